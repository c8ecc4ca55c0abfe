"""Property-based test of hostile suites (``hypothesis``): mutate a valid tiny suite, video or token-level
(drop keys, swap types, extreme numbers, path-like and unicode strings), in the file or through ``--set``,
and run it. Whatever the mutation, ``rad-bench run`` exits 0 or 2 without a traceback, writes nothing
outside its one run folder, and leaves the results already in the results folder byte for byte as they
were. And whatever the folders, files and symlinks under a run folder, the check every run and report
makes refuses exactly the trees with a symlink to elsewhere.

OMP_NUM_THREADS=1 pytest tests/test_property.py
"""

from __future__ import annotations

import copy
import hashlib
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from rad_bench.cli import app
from rad_bench.utils import OutsideError, check_tree

VALID: dict[str, Any] = {
    "name": "prop",
    "version": 1,
    "blocks": ["none"],
    "metrics": ["psnr"],
    "model": {"preset": "tiny", "window": 3, "patch": 4, "dim": 32, "depth": 2, "heads": 2},
    "data": {"name": "synthetic", "frame_size": 16, "grid": 3, "step": 8, "landmarks": 6, "episodes": 4,
             "episode_len": 12},
    "train": {"steps": 1, "batch_size": 2, "clip_len": 6, "log_every": 1, "warmup": 1},
    "rollout": {"context": 4, "horizon": 4, "clips": 2, "batch_size": 2, "sampling_steps": 2},
    "seeds": [0],
}  # fmt: skip
PATHS = [(k,) for k in VALID] + [(k, sub) for k, v in VALID.items() if isinstance(v, dict) for sub in v]
PATH_LIKE = ["../x", "../../etc", "/tmp/abs", "a/b", "..", ".", "~", "a\\b", "con", "x" * 300]
UNICODE = ["名前", "café", "\u202eevil", "a\x00b", " ", "", "🙂", "\n"]
EXTREME = [0, -1, 1, 2**31, 2**63, -(2**63), 10**30, 1e308, -1e-308, float("inf"), float("nan")]
values = st.one_of(
    st.sampled_from(EXTREME), st.sampled_from(PATH_LIKE + UNICODE), st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12), st.booleans(), st.none(),
    st.lists(st.sampled_from(["none", 0, "../x", None]), max_size=3),
    st.dictionaries(st.sampled_from(["name", "x", "../y"]), st.sampled_from([1, "a", None]), max_size=2),
)  # fmt: skip
mutation = st.tuples(st.sampled_from(PATHS), st.sampled_from(["drop", "replace"]), values)
SLOW_S = 6  # a mutation that validates but runs long (a dropped key falls back to a larger default) is cut here


class _Slow(BaseException):  # not an Exception: no `except Exception` in the code under test swallows it
    pass


def _mutate(suite: dict[str, Any], muts: list[tuple[tuple[str, ...], str, Any]]) -> dict[str, Any]:
    out = copy.deepcopy(suite)
    for path, kind, value in muts:
        parent = out
        for key in path[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if not isinstance(parent, dict):
            continue
        if kind == "drop":
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = value
    return out


def _snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def _on_alarm(*_: Any) -> None:
    raise _Slow


def _run_is_contained(work: Path, args: list[str]) -> None:
    """``rad-bench run ARGS`` in ``work`` exits 0 or 2 without a traceback (or is cut after SLOW_S), changes
    nothing already there and writes at most one run folder ``results/<suite>/<run>/``."""
    results = work / "results"
    old = results / "older" / "20260101-000000-aaaaaaa"  # results a user already has
    old.mkdir(parents=True)
    (old / "metrics.csv").write_text("block,seed,clip,frame,tag,metric,value\nnone,0,0,4,revisit,psnr,12.5\n")
    (old / "suite.resolved.yaml").write_text("name: older\n")
    before = _snapshot(work)

    cwd = Path.cwd()
    os.chdir(work)  # a relative path that escaped would land here, where the snapshot sees it
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(SLOW_S)
    try:
        res = CliRunner().invoke(app, ["run", *args, "--results", "results"])
    except _Slow:  # a BaseException: CliRunner passes it on
        res = None
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        os.chdir(cwd)

    event("slow" if res is None or isinstance(res.exception, _Slow) else f"exit {res.exit_code}")
    if res is not None and not isinstance(res.exception, _Slow):
        assert res.exit_code in (0, 2), f"exit {res.exit_code}: {res.exception!r}\n{res.output}"
        assert "Traceback" not in res.output, res.output
    after = _snapshot(work)
    assert {k: after.get(k) for k in before} == before  # nothing already there was changed or removed
    new = sorted(set(after) - set(before))
    run_folders = {Path(p).parts[:3] for p in new}
    assert all(Path(p).parts[0] == "results" and len(Path(p).parts) > 3 for p in new), new
    assert len(run_folders) <= 1, run_folders  # at most one run folder: results/<suite>/<run>/...


def _set_items(muts: list[tuple[tuple[str, ...], str, Any]]) -> list[str]:
    """The replacing mutations as ``--set key=value`` arguments (a value written as YAML, on one line)."""
    items = []
    for path, kind, value in muts:
        if kind == "replace":
            text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10**6)
            items += ["--set", f"{'.'.join(path)}={text.removesuffix(chr(10)).removesuffix('...').strip()}"]
    return items


VIDEO_ARGS = ["s.yaml", "--no-progress", "--limit-steps", "1"]


@pytest.mark.slow
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(muts=st.lists(mutation, min_size=1, max_size=3))
def test_mutated_suites_exit_cleanly_and_write_only_their_run_folder(tmp_path_factory, muts):
    work = tmp_path_factory.mktemp("prop")
    (work / "s.yaml").write_text(yaml.safe_dump(_mutate(VALID, muts), allow_unicode=True))
    _run_is_contained(work, VIDEO_ARGS)


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(muts=st.lists(mutation, min_size=1, max_size=3))
def test_mutations_through_set_exit_cleanly_and_write_only_their_run_folder(tmp_path_factory, muts):
    work = tmp_path_factory.mktemp("prop")
    (work / "s.yaml").write_text(yaml.safe_dump(VALID))
    _run_is_contained(work, [*VIDEO_ARGS, *_set_items(muts)])


MQAR: dict[str, Any] = {
    "kind": "mqar", "name": "mq", "blocks": ["none"], "ks": [2], "seeds": [0], "steps": 2, "batch": 4,
    "eval_size": 4, "val_size": 4, "seq_len": 8, "key_vocab": 4, "value_vocab": 4, "dim": 16, "heads": 2,
    "layers": 1, "progress": False,
}  # fmt: skip
token_mutation = st.tuples(st.sampled_from([(k,) for k in MQAR if k != "kind"]), st.sampled_from(["drop", "replace"]),
                           values)  # fmt: skip


@pytest.mark.slow
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(muts=st.lists(token_mutation, min_size=1, max_size=3), via_set=st.booleans())
def test_mutated_token_suites_exit_cleanly_and_write_only_their_run_folder(tmp_path_factory, muts, via_set):
    work = tmp_path_factory.mktemp("prop")
    body = MQAR if via_set else _mutate(MQAR, muts)
    (work / "mq.yaml").write_text(yaml.safe_dump(body, allow_unicode=True))
    _run_is_contained(work, ["mq.yaml", *(_set_items(muts) if via_set else [])])


# a tree under a run folder: entries (relative path, kind), kind "dir", "file" or a link's target
tree_entry = st.tuples(
    st.lists(st.sampled_from(["a", "b", "figures", "logs"]), min_size=1, max_size=3).map("/".join),
    st.sampled_from(["dir", "file", "link:inside", "link:outside", "link:dangling-outside", "link:up-and-back"]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(entries=st.lists(tree_entry, max_size=8))
def test_check_tree_refuses_exactly_the_trees_with_a_link_outside(tmp_path_factory, entries):
    """Whatever the subfolders, files and symlinks under a run folder, :func:`check_tree` refuses it exactly
    when some symlink reachable without following links resolves outside the folder."""
    work = tmp_path_factory.mktemp("tree")
    root, outside = work / "run", work / "outside"
    root.mkdir()
    outside.mkdir()
    targets = {"link:inside": root, "link:outside": outside, "link:dangling-outside": work / "nowhere",
               "link:up-and-back": root / ".." / "run"}  # fmt: skip
    escapes = False
    for rel, kind in entries:
        path = root / rel
        if any(p.is_symlink() or p.is_file() for p in [path, *path.parents] if p != root and root in p.parents):
            continue  # under a link (the walk does not follow it) or a file: not a place to add to
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "dir":
            path.mkdir()
        elif kind == "file":
            path.write_text("x")
        else:
            path.symlink_to(targets[kind])
            escapes |= kind in ("link:outside", "link:dangling-outside")
    if escapes:
        with pytest.raises(OutsideError, match="is a symlink to .* outside"):
            check_tree(root)
    else:
        check_tree(root)
