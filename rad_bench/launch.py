"""More processes for one suite: ``--workers N`` on this machine, ``--launcher slurm|local`` on a cluster.

Both lean on what lets any processes share a run folder (:mod:`rad_bench.rundir`): a cell is computed
by whichever process takes its lock first and is never computed twice, so no cell is assigned here.

- ``rad-bench run SUITE --workers N`` (:func:`worker_pool`): once the run folder is chosen, N-1 copies
  of the same command start with ``--run-dir`` set to it, ``--no-report`` and ``--workers 1``; this
  process runs cells too, waits for them, then writes the report. Their output is in
  ``logs/worker<i>.log``. Small cells then fill one GPU (or the CPU cores: each process gets
  ``cores / N`` torch threads unless ``--threads`` says otherwise). A suite's ``launcher.workers`` is the
  default of ``--workers`` for a plain run (not with ``--launcher`` or under torchrun).
- ``rad-bench run SUITE --launcher slurm`` (:func:`run_on_cluster`): one submitit job per cell not
  yet done, each running the same cell code (:func:`run_cell_job`) into the shared run folder, with
  the resources of the suite's ``launcher:`` section (``--set launcher.gpus=2``); the report is drawn
  when every job has ended. ``--launcher local`` runs the same jobs as local processes (submitit's
  local executor): the way to try it without a cluster, and what the tests run. A cell that itself
  needs several GPUs keeps using torchrun (DDP). submitit is an optional dependency
  (``pip install 'rad-bench[cluster]'``), imported only here.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rad_bench.config import Suite
from rad_bench.plan import expand_cells
from rad_bench.rundir import cell_done, start_run_dir
from rad_bench.runner import finish_run, limit_train, run_suite
from rad_bench.sections import LauncherCfg

CLUSTER_INSTALL = "pip install 'rad-bench[cluster]'  (or: pip install submitit)"


class LaunchError(RuntimeError):
    """Extra processes or cluster jobs could not run or failed; the message names their logs."""


AUTO_MIN_STEPS = 100  # a helper costs a process start (importing torch: seconds), repaid by a training this long


def auto_workers(suite: Suite, limit_steps: int | None, device: str) -> int:
    """``launcher.workers: auto``: on CPU one process per core, at most one per training, when the suite
    trains two or more models of ``AUTO_MIN_STEPS`` steps or more (``--limit-steps`` counted); else one.
    On 2 CPU cores two one-thread processes side by side train the recall suite's models 1.4-1.9x faster than one
    process with two threads, and the smoke suite's as fast (docs/throughput.md); on CUDA one process has the device."""
    if not device.startswith("cpu"):
        return 1
    cap = limit_steps or 1 << 62
    trainings = [c for c in expand_cells(suite) if not c.reference and min(c.suite.train.steps, cap) >= AUTO_MIN_STEPS]
    return max(1, min(os.cpu_count() or 1, len(trainings)))


def worker_threads(workers: int, threads: int | None) -> int | None:
    """Torch threads per process: ``threads`` if given, else the cores shared among ``workers``."""
    if threads is not None or workers <= 1:
        return threads
    return max(1, (os.cpu_count() or 1) // workers)


def worker_command(suite: Path, overrides: list[str], limit_steps: int | None, threads: int | None) -> list[str]:
    """The command a ``--workers`` helper runs (``--run-dir`` is added once the folder is known)."""
    cmd = [
        sys.executable,
        "-m",
        "rad_bench",
        "run",
        str(suite),
        "--no-progress",
        "--no-report",
        "--workers",
        "1",
        "--helper",
    ]
    cmd += [a for s in overrides for a in ("--set", s)]
    cmd += ["--limit-steps", str(limit_steps)] if limit_steps is not None else []
    return cmd + (["--threads", str(threads)] if threads is not None else [])


def worker_pool(cmd: list[str], n: int) -> Callable[[Path], contextlib.AbstractContextManager[None]]:
    """:func:`rad_bench.runner.run_suite`'s ``helpers``: ``n`` processes of ``cmd`` on the run folder,
    started on entry; on a clean exit waited for (a failed one is a LaunchError naming its log), on an
    error in this process terminated."""

    @contextlib.contextmanager
    def pool(run_dir: Path) -> Iterator[None]:
        (run_dir / "logs").mkdir(parents=True, exist_ok=True)
        logs = [run_dir / "logs" / f"worker{i + 1}.log" for i in range(n)]
        procs = [_start(cmd + ["--run-dir", str(run_dir)], log) for log in logs]
        try:
            yield
        except BaseException:
            for p in procs:
                p.terminate()
            raise
        failed = [f"{log} (exit {p.wait()})" for p, log in zip(procs, logs) if p.wait() != 0]
        if failed:
            raise LaunchError(f"{len(failed)} of {n} worker processes failed; see {', '.join(failed)}")

    return pool


def _start(cmd: list[str], log: Path) -> subprocess.Popen:
    with log.open("w") as f:  # the child keeps its own handle
        return subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT)


# --------------------------------------------------------------------------------------------
#                                   Cluster jobs (submitit)
# --------------------------------------------------------------------------------------------


def import_submitit(cluster: str) -> Any:
    """submitit, checked with the scheduler before any folder is made; a LaunchError with the fix if missing."""
    try:
        import submitit
    except ImportError:
        raise LaunchError(f"--launcher needs the submitit package, which is not installed: {CLUSTER_INSTALL}") from None
    if cluster == "slurm" and shutil.which("sbatch") is None:
        raise LaunchError(
            "--launcher slurm: no Slurm on this machine (sbatch not found); run it on the cluster's login node, "
            "or try it here with --launcher local"
        )
    return submitit


def run_cell_job(suite: Suite, run_dir: Path, cell: str, limit_steps: int | None, argv: list[str]) -> str:
    """What one cluster job runs: ``cell`` of ``suite`` into ``run_dir``, no report. Returns the cell."""
    run_suite(
        suite,
        run_dir=run_dir,
        limit_steps=limit_steps,
        only={cell},
        report=False,
        progress=False,
        argv=argv,
        record=False,
    )
    return cell


def executor(cluster: str, folder: Path, cfg: LauncherCfg) -> Any:
    """A submitit executor for ``cluster`` (``slurm`` or ``local``) with ``cfg``'s resources per job."""
    ex = import_submitit(cluster).AutoExecutor(folder=folder, cluster=cluster)
    params: dict[str, Any] = {
        "name": "rad-bench",
        "timeout_min": cfg.time,
        "gpus_per_node": cfg.gpus,
        "cpus_per_task": cfg.cpus,
        "tasks_per_node": 1,
        "nodes": 1,
    }
    params.update({"mem_gb": cfg.mem_gb} if cfg.mem_gb else {})
    params.update({"slurm_partition": cfg.partition} if cfg.partition else {})
    ex.update_parameters(**params)
    return ex


def _submit(ex: Any, cluster: str, args: list[tuple[Any, ...]]) -> list[Any]:
    try:
        return [ex.submit(run_cell_job, *a) for a in args]
    except Exception as e:  # sbatch missing or refusing the resources: no traceback, the scheduler's words
        raise LaunchError(f"--launcher {cluster}: submitting the jobs failed ({type(e).__name__}: {e})") from None


def _wait(jobs: list[Any], cells: list[str]) -> None:
    failed = []
    for cell, job in zip(cells, jobs):
        try:
            job.result()
        except Exception as e:  # submitit's FailedJobError / UncompletedJobError carry the job's stderr
            failed.append(f"{cell} (job {job.job_id}, {type(e).__name__}; log {job.paths.stderr})")
    if failed:
        raise LaunchError(f"{len(failed)} of {len(jobs)} cell jobs failed: {'; '.join(failed)}")


def run_on_cluster(
    suite: Suite,
    cluster: str,
    *,
    run_dir: Path | None,
    resume: bool,
    limit_steps: int | None,
    results_root: Path,
    argv: list[str],
) -> Path:
    """One job per cell not done, into one run folder; the report once all have ended. Returns the folder."""
    import_submitit(cluster)  # before any folder is made
    limited_suite, limited = limit_train(suite, limit_steps)
    run_dir = start_run_dir(limited_suite, run_dir, resume, limited, results_root, argv, "cpu")
    cells = [c.name for c in expand_cells(limited_suite) if not cell_done(run_dir, c.name)]
    print(f"rad-bench: {run_dir}: {len(cells)} cell jobs to {cluster}", file=sys.stderr)
    ex = executor(cluster, run_dir / "logs" / "submitit", suite.launcher)
    jobs = _submit(ex, cluster, [(suite, run_dir, c, limit_steps, argv) for c in cells])
    _wait(jobs, cells)
    finish_run(run_dir, limited_suite)
    return run_dir
