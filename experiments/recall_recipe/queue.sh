#!/usr/bin/env bash
# The recipe study as it was run: two queues of one torch thread each side by side (on 2 cores one thread per
# process trains these small steps faster than two threads); step times measured while both run are not figures.
# Step 0 (today.yaml) was stopped after seeds 0 and 1 to free the machine (later fields changed its resolved suite,
# so --resume now starts afresh: its table rows have 2 seeds).
# Usage: bash experiments/recall_recipe/queue.sh  (from the repository root; results under results/)
set -e
export OMP_NUM_THREADS=1
d=experiments/recall_recipe
(.venv/bin/rad-bench run $d/shift.yaml --resume > results/recall_recipe_shift.log 2>&1) &
(.venv/bin/rad-bench run $d/today.yaml --resume > results/recall_recipe_today.log 2>&1;
 .venv/bin/rad-bench run $d/targets.yaml --resume > results/recall_recipe_targets.log 2>&1) &
wait
