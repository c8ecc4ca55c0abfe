"""``python -m rad_bench``: the ``rad-bench`` command line (also under ``torchrun``)."""

from rad_bench.cli import main

main()
