"""The top of a run's report: what was run and the caveats a reader must see before any number.

*What was run* comes from the run folder alone: the commands that started it (``argv.txt``, one line per
start: the first and every ``--resume``), their ``--set`` overrides, the resolved values that differ
from the suite file as it is on disk now (``suite.resolved.yaml`` against the file the command named, read
with its includes), the seeds and blocks that finished (``metrics.csv``), training steps, the scored split,
the device, threads and processes (``env.json``) and the git commit. Torch-free, like the rest of the
report.

*Caveats* are the conditions under which the numbers must not be quoted as the suite's result: capped
training steps, the validation split, fewer seeds than the suite names, one seed (intervals over clips),
command-line overrides, or a suite file that has changed since.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from rad_bench.report.tables import flag, label_base
from rad_bench.report.views import caveats

ARGV_TXT, ENV_JSON, RESOLVED = "argv.txt", "env.json", "suite.resolved.yaml"


@dataclass
class Record:
    """What a run folder says about how it was run, read once per report."""

    run_dir: Path
    commands: list[list[str]]  # argv.txt: one command per start, oldest first
    resolved: dict[str, Any]  # suite.resolved.yaml ({} without one)
    env: dict[str, Any]  # env.json ({} without one)
    suite_now: dict[str, Any] | None  # the suite file the first command named, as on disk now; None: unreadable


def read_record(run_dir: Path) -> Record:
    """The run folder's :class:`Record` (missing or damaged files read as empty)."""
    from rad_bench.suitefile import SuiteError, read_with_includes

    cmds = commands(run_dir)
    path = suite_path(cmds[0]) if cmds else None
    try:
        now = read_with_includes(path) if path is not None else None
    except (SuiteError, OSError):
        now = None
    return Record(run_dir, cmds, _yaml(run_dir / RESOLVED), _env(run_dir), now)


def _yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        out = yaml.safe_load(path.read_text()) if path.is_file() else None
    except (OSError, yaml.YAMLError):
        return {}
    return out if isinstance(out, dict) else {}


def commands(run_dir: Path) -> list[list[str]]:
    """The commands that started the run, oldest first (``argv.txt``: one line per start)."""
    f = run_dir / ARGV_TXT
    try:
        lines = f.read_text().splitlines() if f.is_file() else []
    except (OSError, UnicodeDecodeError):
        return []
    out = []
    for line in lines:
        try:
            out.append(shlex.split(line))
        except ValueError:
            out.append(line.split())
    return [c for c in out if c]


def overrides(cmd: list[str]) -> list[str]:
    """The ``--set KEY=VALUE`` items of one command (``--set=KEY=VALUE`` too)."""
    out = []
    for i, a in enumerate(cmd):
        if a == "--set" and i + 1 < len(cmd):
            out.append(cmd[i + 1])
        elif a.startswith("--set="):
            out.append(a.removeprefix("--set="))
    return out


def suite_path(cmd: list[str]) -> Path | None:
    """The suite file a ``rad-bench run SUITE ...`` command named (the first argument after ``run``)."""
    if "run" not in cmd:
        return None
    rest = cmd[cmd.index("run") + 1 :]
    return Path(rest[0]) if rest and not rest[0].startswith("-") else None


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        out |= _flat(v, key + ".") if isinstance(v, dict) and v else {key: v}
    return out


def file_differences(rec: Record) -> list[str] | None:
    """``key: file -> run`` for each value of the suite file (with its includes, as on disk now) that the
    run resolved differently (swept keys excepted: each cell runs the sweep's value); None when the file
    cannot be read any more."""
    if rec.suite_now is None or not rec.resolved:
        return None
    raw, resolved = _flat(rec.suite_now), _flat(rec.resolved)
    skip = ("include", "docs", "sweep.", *tuple(rec.resolved.get("sweep") or {}))
    return [
        f"{k}: {raw[k]!r} in the file, {resolved[k]!r} in the run"
        for k in sorted(raw)
        if k in resolved and not k.startswith(skip) and _norm(raw[k]) != _norm(resolved[k])
    ]


def _norm(v: Any) -> Any:
    """Values as validation leaves them (``3`` and ``3.0`` alike, a block given by name and its resolved
    entry with no label, settings or learning rate alike, lists of them too)."""
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, list | tuple):
        return [_norm(x) for x in v]
    if isinstance(v, dict) and "name" in v and not any(v.get(k) for k in ("label", "kwargs", "lr")):
        return v["name"]
    return v


def _env(run_dir: Path) -> dict[str, Any]:
    try:
        out = json.loads((run_dir / ENV_JSON).read_text())
    except (OSError, ValueError):
        return {}
    return out if isinstance(out, dict) else {}


def _steps(df: pd.DataFrame, resolved: dict[str, Any]) -> str:
    steps = (resolved.get("train") or {}).get("steps")
    text = f"{steps} per training" if steps is not None else "not recorded"
    if "limited" in df and bool(flag(df["limited"]).any()):
        text += " (capped by --limit-steps: see the caveat)"
    return text


def _device(env: dict[str, Any]) -> str:
    if not env:
        return "not recorded (no env.json)"
    dev = str(env.get("cuda") or env.get("device", "?"))
    parts = [dev, f"{env.get('torch_threads', '?')} torch thread(s)", f"{env.get('cpu_count', '?')} CPU cores"]
    if int(env.get("world_size") or 1) > 1:
        parts.append(f"{env['world_size']} processes (torchrun)")
    return ", ".join(parts) + f"; torch {env.get('torch', '?')}, Python {env.get('python', '?')}"


def what_was_run(rec: Record, df: pd.DataFrame) -> list[tuple[str, str]]:
    """(field, value) rows of the *What was run* table."""
    resolved, env, cmds = rec.resolved, rec.env, rec.commands
    seeds = sorted(map(int, df["seed"].unique()))
    named = resolved.get("seeds")
    rows = [("run folder", f"`{rec.run_dir}`")]
    rows += [("command" if i == 0 else "resumed with", f"`{shlex.join(c)}`") for i, c in enumerate(cmds)]
    sets = list(dict.fromkeys(s for c in cmds for s in overrides(c)))
    rows.append(("--set overrides", ", ".join(f"`{s}`" for s in sets) if sets else "none"))
    diffs = file_differences(rec)
    if diffs:
        rows.append(("differs from the suite file", "; ".join(diffs)))
    rows.append(("seeds scored", f"{seeds}" + (f" (the suite names {named})" if named and named != seeds else "")))
    rows.append(("blocks", ", ".join(dict.fromkeys(label_base(str(b)) for b in df["block"].unique()))))
    for key, values in (resolved.get("sweep") or {}).items():
        rows.append((f"swept: {key}", ", ".join(map(str, values))))
    rows.append(("training steps", _steps(df, resolved)))
    split = sorted(map(str, df["split"].dropna().unique())) if "split" in df else ["test"]
    rows.append(("episodes scored", f"{', '.join(split)} split"))
    rows.append(("device", _device(env)))
    sha = env.get("git_sha") or (str(df["git_sha"].iloc[0]) if "git_sha" in df else "")
    rows.append(("git commit", f"`{sha[:12]}`" if sha else "not recorded"))
    return rows


def run_caveats(rec: Record, df: pd.DataFrame, table: pd.DataFrame) -> list[str]:
    """The caveats of one run, most serious first (empty for a full run of the suite as written)."""
    out = caveats(table)  # capped steps, validation split: what the table itself says
    seeds, named, cmds = df["seed"].nunique(), rec.resolved.get("seeds"), rec.commands
    file_seeds = (rec.suite_now or {}).get("seeds")
    want = max(len(named or []), len(file_seeds or []))
    if want > seeds:
        out.append(
            f"**Fewer seeds than the suite names**: {seeds} scored of {want}; the intervals are wider and "
            "the run is not the suite's result."
        )
    if seeds == 1:
        out.append(
            "**One seed**: every ± interval is over evaluation clips of one training, so it says nothing "
            "about how much another training would differ."
        )
    if any(overrides(c) for c in cmds):
        out.append(
            "**Command-line overrides** (`--set`, listed under *What was run*): the run differs from the "
            "suite file; quote it with them."
        )
    elif file_differences(rec):
        out.append(
            "**The suite file has changed since this run** (see *What was run*): rerun it, or quote the "
            "run with the values it used."
        )
    return out
