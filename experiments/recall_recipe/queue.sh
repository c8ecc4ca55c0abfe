#!/usr/bin/env bash
# The recipe study as two queues of one thread each (on 2 cores one thread per process trains faster than two
# threads for these small steps; step times measured while both queues run are not figures).
# Usage: bash experiments/recall_recipe/queue.sh  (from the repository root; results under results/)
set -e
export OMP_NUM_THREADS=1
d=experiments/recall_recipe
(.venv/bin/rad-bench run $d/shift.yaml --resume > results/recall_recipe_shift.log 2>&1) &
(.venv/bin/rad-bench run $d/today.yaml --resume > results/recall_recipe_today.log 2>&1;
 .venv/bin/rad-bench run $d/targets.yaml --resume > results/recall_recipe_targets.log 2>&1) &
wait
