from rad_bench.cli import main

main()
