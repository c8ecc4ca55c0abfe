"""Bad input: every case stops ``rad-bench run`` with exit code 2 (not a traceback) and a message
naming the file, the field and the fix, and leaves no partial results behind. Errors found when
the suite is loaded leave no run folder at all; the few found only while reading data or training
leave the run folder's metadata but no cell, checkpoint, sample or ``metrics.csv``.

OMP_NUM_THREADS=1 pytest tests/test_bad_input.py
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import struct
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from rad_bench.cli import app
from rad_bench.config import SuiteError, load_suite
from rad_bench.data import DataError, DataNotFoundError
from rad_bench.data import memory_maze as mm
from rad_bench.data.cache import CorruptShardWarning
from rad_bench.registry import DATASETS

FIXTURES = Path(__file__).parent / "fixtures" / "suites"
SUITES = Path(__file__).resolve().parents[1] / "suites"
HEAD = "include: _tiny_base.yaml\nname: bad\n"
cli = CliRunner()


def suite_file(tmp_path: Path, body: str, name: str = "s.yaml") -> Path:
    """A suite in ``tmp_path`` next to a copy of the tiny base it may include."""
    (tmp_path / "_tiny_base.yaml").write_text((FIXTURES / "_tiny_base.yaml").read_text())
    p = tmp_path / name
    p.write_text(body)
    return p


def run(tmp_path: Path, suite: Path, *args: str):
    return cli.invoke(
        app, ["run", str(suite), "--results", str(tmp_path / "results"), "--no-progress", "--limit-steps", "2", *args]
    )


def assert_refused(res, *patterns: str) -> str:
    """Exit code 2 with a one-line ``error:`` message matching every pattern (regex, in order)."""
    out = res.output
    assert res.exit_code == 2, f"exit {res.exit_code} ({res.exception!r}):\n{out}"
    assert "Traceback" not in out and "error: " in out, out
    assert re.search(".*".join(patterns), out, re.S), f"{patterns} not in:\n{out}"
    return out


def assert_no_run_folder(tmp_path: Path) -> None:
    root = tmp_path / "results"
    assert not root.exists() or not any(root.iterdir()), sorted(root.rglob("*"))


def assert_no_results(tmp_path: Path) -> None:
    """The run folder may hold its metadata, but nothing a report or ``--resume`` would take as done."""
    files = [p.relative_to(tmp_path) for p in (tmp_path / "results").rglob("*") if p.is_file()]
    partial = [p for p in files if p.name == "metrics.csv" or {"cells", "checkpoints", "samples"} & set(p.parts)]
    assert not partial, files


# --------------------------------------------------------------------------------------------
#                                   The file itself
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, patterns",
    [
        ("name: x\n  blocks: [none]\n", [r"malformed YAML at line 2, column 9", "mapping values", "indentation"]),
        ("name: x\n\tblocks: [none]\n", [r"malformed YAML at line 2, column 1", "indent with spaces, not tabs"]),
        ("name: x\nblocks: [none\n", [r"malformed YAML", "flow sequence at line 2, column 9", "brackets"]),
        ("name: x\nblocks: [none]\nname: y\n", [r"line 3, column 1", "key 'name' appears twice", "keep one"]),
        ("- name: x\n- blocks: [none]\n", [r"top level is a list", "mapping of keys"]),
        ("# nothing yet\n", [r"empty file", "'name:' and 'blocks:'"]),
    ],
    ids=["indentation", "tab", "unclosed_bracket", "duplicate_key", "list", "empty"],
)
def test_unreadable_suite_file(tmp_path, text, patterns):
    p = suite_file(tmp_path, text)
    assert_refused(run(tmp_path, p), re.escape(str(p)), *patterns)
    assert_no_run_folder(tmp_path)


def test_missing_suite_file(tmp_path):
    p = tmp_path / "nope.yaml"
    assert_refused(run(tmp_path, p), re.escape(str(p)), "no such suite file", "rad-bench ls suites")
    assert_no_run_folder(tmp_path)


def test_include_of_a_missing_file(tmp_path):
    p = suite_file(tmp_path, "include: _base_typo.yaml\nname: x\nblocks: [none]\n")
    assert_refused(run(tmp_path, p), re.escape(str(p)), "field 'include'", "_base_typo.yaml not found")
    assert_no_run_folder(tmp_path)


@pytest.mark.parametrize(
    "tag", ["!!python/object/apply:os.system ['touch {marker}']", "!!python/object:pathlib.Path {{}}"]
)
def test_python_tags_are_refused_by_the_safe_loader(tmp_path, tag):
    marker = tmp_path / "pwned"
    p = suite_file(tmp_path, f"name: {tag.format(marker=marker)}\nblocks: [none]\n")
    assert_refused(run(tmp_path, p), re.escape(str(p)), "line 1, column 7", "python/object", "safe loader")
    assert not marker.exists()  # nothing was executed
    assert_no_run_folder(tmp_path)


# --------------------------------------------------------------------------------------------
#                                   Fields: types, keys, names
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, patterns",
    [
        ("blocks: [none]\ntrain: {steps: ten}", [r"field 'train\.steps'", "valid integer", "'ten'"]),
        ("blocks: [none]\nseeds: 3", [r"field 'seeds'", "valid list", r"got 3"]),
        ("blocks: [none]\nmodel: {window: -1}", [r"field 'model\.window'", "greater than or equal to 1", "-1"]),
        ("blocks: [none]\nrollout: {context: 2.5}", [r"field 'rollout\.context'", "integer"]),
        ("blocks: none", [r"field 'blocks'", "valid list"]),
        ("blocks: [{label: x}]", [r"field 'blocks\[0\]\.name'", "required; add it"]),
        ("blocks: [{name: none, lr: -1}]", [r"field 'blocks\[0\]\.lr'", "greater than 0", "-1"]),
        ("blocks: [none]\nrollout: {split: val}", [r"field 'rollout\.split'", "'test' or 'validation'", "'val'"]),
    ],
    ids=[
        "steps_ten",
        "seeds_scalar",
        "window_negative",
        "context_float",
        "blocks_scalar",
        "block_without_name",
        "block_lr_negative",
        "split_unknown",
    ],  # fmt: skip
)
def test_wrong_types(tmp_path, body, patterns):
    p = suite_file(tmp_path, HEAD + body + "\n")
    assert_refused(run(tmp_path, p), re.escape(str(p)), *patterns)
    assert_no_run_folder(tmp_path)


def test_missing_required_fields(tmp_path):
    p = suite_file(tmp_path, "include: _tiny_base.yaml\n")
    out = assert_refused(run(tmp_path, p), re.escape(str(p)), "field 'name': required")
    assert "field 'blocks': required" in out


@pytest.mark.parametrize(
    "body, patterns",
    [
        ("blocks: [none]\ntrian: {steps: 2}", [r"field 'trian'", "unknown key", "Did you mean: train"]),
        ("blocks: [none]\ntrain: {stepz: 2}", [r"field 'train\.stepz'", "unknown key", "Did you mean: steps"]),
        ("blocks: [none]\nmodel: {windw: 2}", [r"field 'model\.windw'", "Did you mean: window"]),
        ("blocks: [none]\nrollout: {horizn: 2}", [r"field 'rollout\.horizn'", "Did you mean: horizon"]),
        ("blocks: [none]\ndata: {grdi: 3}", [r"field 'data\.grdi'", "Did you mean: grid"]),
        ("blocks: [{name: none, kwarg: {}}]", [r"field 'blocks\[0\]\.kwarg'", "Did you mean: kwargs"]),
    ],
    ids=["top", "train", "model", "rollout", "data", "block_entry"],
)
def test_unknown_keys_suggest_the_closest(tmp_path, body, patterns):
    p = suite_file(tmp_path, HEAD + body + "\n")
    assert_refused(run(tmp_path, p), re.escape(str(p)), *patterns)
    assert_no_run_folder(tmp_path)


@pytest.mark.parametrize(
    "body, patterns",
    [
        ("blocks: [none, mamba]", [r"field 'blocks\[1\]'", "unknown block 'mamba'", "Did you mean: mamba2"]),
        ("blocks: [none]\nmetrics: [psnr, lpipz]", [r"field 'metrics\[1\]'", "unknown metric 'lpipz'", "lpips"]),
        ("blocks: [none]\ndata: {name: synthetik}", [r"field 'data\.name'", "unknown dataset", "synthetic"]),
        ("blocks: [none]\nmodel: {preset: tinny}", [r"field 'model\.preset'", "unknown preset 'tinny'", "tiny"]),
        (
            "blocks: [{name: mamba2, kwargs: {d_stat: 8}}]",
            [r"field 'blocks\[0\]\.kwargs\.d_stat'", "takes no argument 'd_stat'", "Valid: .*d_state"],
        ),
        (
            "blocks: [none]\nleaderboard: {sort_by: psnr_revist}",
            ["field 'leaderboard.sort_by': 'psnr_revist' is not a column", "psnr_revisit"],
        ),
    ],
    ids=["block", "metric", "dataset", "preset", "block_kwargs", "sort_by"],
)
def test_unknown_names_suggest_the_closest(tmp_path, body, patterns):
    p = suite_file(tmp_path, HEAD + body + "\n")
    assert_refused(run(tmp_path, p), re.escape(str(p)), *patterns)
    assert_no_run_folder(tmp_path)


# --------------------------------------------------------------------------------------------
#                                   Impossible sizes (all caught at load time)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "sets, patterns",
    [
        (["model.window=7"], [r"model\.window \(7\) > train\.clip_len \(6\)", "at least one window"]),
        (
            ["train.clip_len=20"],
            [r"train\.clip_len \(20\) > data\.episode_len \(16\)", "lower train.clip_len or raise data.episode_len"],
        ),
        (["data.frame_size=18"], [r"data\.frame_size \(18\) is not a multiple of model\.patch \(4\)", "divides"]),
        (["model.heads=3"], [r"model\.dim \(32\) / model\.heads \(3\)", "change model.dim or model.heads"]),
        (["metric_settings.fvd.bucket=10"], [r"field 'metric_settings\.fvd\.bucket': 10 > rollout\.horizon \(6\)"]),
        (["metric_settings.fvd.bucket=4"], [r"field 'metric_settings\.fvd\.bucket': 4 frames; I3D needs at least 9"]),
        (
            ["metric_settings.fvd.batches=2"],
            [r"'metric_settings\.fvd\.batches': rollout\.clips \(3\) must be a multiple"],
        ),
        (["metric_settings.fvd.batches=0"], [r"field 'metric_settings\.fvd\.batches': Input should be greater than"]),
        (
            ["metric_settings.fvd.buckets=16"],
            [r"field 'metric_settings\.fvd\.buckets': unknown key\. Did you mean: bucket"],
        ),
        (
            ["metric_settings.fdv.bucket=16"],
            [r"field 'metric_settings\.fdv': unknown metric 'fdv'\. Did you mean: fvd"],
        ),
        (["metric_settings.lpips.bucket=16"], [r"field 'metric_settings\.lpips': metric 'lpips' takes no settings"]),
        (
            ["rollout.fvd_bucket=16"],
            [r"field 'rollout\.fvd_bucket': unknown key\. It moved to metric_settings\.fvd\.bucket"],
        ),
        (["rollout.context=1", "rollout.horizon=4"], ["fvd needs episodes of >= 9 frames", r"rollout\.context"]),
    ],
    ids=[
        "window_gt_clip",
        "clip_gt_episode",
        "frame_vs_patch",
        "dim_vs_heads",
        "fvd_bucket",
        "fvd_bucket_short",
        "fvd_batches",
        "fvd_batches_zero",
        "fvd_typo",
        "metric_typo",
        "no_settings",
        "moved_key",
        "fvd_len",
    ],
)
def test_impossible_sizes(tmp_path, sets, patterns):
    args = [a for s in sets for a in ("--set", s)]
    res = run(tmp_path, FIXTURES / "tiny.yaml", *args)
    assert_refused(res, re.escape(str(FIXTURES / "tiny.yaml")), *patterns)
    assert_no_run_folder(tmp_path)


def test_synthetic_rollout_may_outrun_episode_len(tmp_path):
    """Synthetic evaluation episodes are drawn at context + horizon frames: only training clips are
    bounded by ``data.episode_len``, so a long rollout is valid (that is the point of the bench)."""
    s = load_suite(FIXTURES / "tiny.yaml", ["rollout.horizon=40"])
    assert s.rollout.context + s.rollout.horizon > s.data.episode_len


@pytest.mark.parametrize(
    "sets, patterns",
    [
        (["rollout.clips=20", "data.eval_episodes=8"], [r"rollout\.clips \(20\) > data\.eval_episodes \(8\)"]),
        (["rollout.context=1"], [r"rollout\.context \(1\)", "retrieval", "data.task: reasoning"]),
        (["train.clip_len=200"], [r"train\.clip_len \(200\) > data\.episode_len \(128\)"]),
        (["data.frame_size=30"], [r"data\.frame_size \(30\) is not a multiple of model\.patch \(4\)"]),
    ],
    ids=["clips_gt_eval", "retrieval_context", "clip_gt_episode", "frame_vs_patch"],
)
def test_real_dataset_sizes_at_load_time(sets, patterns):
    """Memory Maze: caught by ``load_suite`` before anything is generated or rendered."""
    with pytest.raises(SuiteError, match=".*".join(patterns)) as e:
        load_suite(SUITES / "memory_maze.yaml", sets)
    assert str(SUITES / "memory_maze.yaml") in str(e.value)


# --------------------------------------------------------------------------------------------
#                                   --set
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "item, patterns",
    [
        ("train.steps", [r"--set 'train\.steps'", "expected KEY=VALUE", "--set train.steps=200"]),
        ("=3", [r"--set '=3'", "expected KEY=VALUE"]),
        ("name.x=3", [r"'name' holds a str \('tiny'\), not a section", "--set 'name=...'"]),
        ("train.steps.max=3", [r"'train\.steps' holds a int \(3\)", "set it as a whole"]),
        ("blocks=[none", [r"--set 'blocks=\[none'", "malformed YAML", "brackets"]),
        ("train.stepz=3", [r"field 'train\.stepz'", "Did you mean: steps"]),
    ],
    ids=["no_equals", "no_key", "under_scalar", "under_int", "bad_value", "unknown_key"],
)
def test_set_errors(tmp_path, item, patterns):
    assert_refused(run(tmp_path, FIXTURES / "tiny.yaml", "--set", item), *patterns)
    assert_no_run_folder(tmp_path)


def test_validate_command_reports_the_same(tmp_path):
    p = suite_file(tmp_path, HEAD + "blocks: [none]\ntrain: {clip_len: 40}\n")
    res = cli.invoke(app, ["validate", str(p)])
    assert_refused(res, re.escape(str(p)), r"train\.clip_len \(40\) > data\.episode_len \(16\)")


# --------------------------------------------------------------------------------------------
#                                   Data on disk: readers
# --------------------------------------------------------------------------------------------


def teco_files(folder: Path, n: int = 4, T: int = 12) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        video = np.full((T, 16, 16, 3), i * 10, np.uint8) + np.arange(T, dtype=np.uint8)[:, None, None, None]
        np.savez_compressed(folder / f"ep{i:03d}.npz", video=video, actions=np.arange(T) % 3)
    return sorted(folder.glob("*.npz"))


def reader_suite(tmp_path: Path, path: Path, data: str = "") -> Path:
    return suite_file(
        tmp_path,
        "name: reader\nblocks: [none]\nmodel: {preset: tiny, window: 3, dim: 32, depth: 2, heads: 2}\n"
        f"data: {{name: teco_npz, path: '{path}', eval_episodes: 2{data}}}\n"
        "train: {steps: 1, batch_size: 2, clip_len: 6, warmup: 1}\n"
        "rollout: {context: 4, horizon: 4, clips: 2, batch_size: 2, sampling_steps: 1}\nmetrics: [psnr]\n",
        name="reader.yaml",
    )


def test_reader_suite_that_fits_validates(tmp_path):
    teco_files(tmp_path / "teco")
    res = cli.invoke(app, ["validate", str(reader_suite(tmp_path, tmp_path / "teco"))])
    assert res.exit_code == 0, res.output


def test_reader_has_no_validation_split(tmp_path):
    teco_files(tmp_path / "teco")
    p = reader_suite(tmp_path, tmp_path / "teco")
    res = run(tmp_path, p, "--set", "rollout.split=validation")
    assert_refused(res, re.escape(str(p)), "rollout.split: validation", "generated dataset")
    assert_no_run_folder(tmp_path)


@pytest.mark.parametrize(
    "damage, patterns",
    [
        ("missing_dir", ["nowhere: no such folder", "data.path", r"video \(T, H, W, 3\) uint8"]),
        ("empty_dir", ["teco: no .npz files", "data.path"]),
        ("too_few", [r"2 \.npz files", "data.eval_episodes=2", "lower data.eval_episodes or add files"]),
        ("truncated", [r"ep001\.npz: unreadable \.npz, truncated or corrupt", "re-download it"]),
        ("missing_array", [r"ep001\.npz: no array 'video'", "re-download it"]),
        ("short_train", [r"ep000\.npz: 4 frames, fewer than train\.clip_len \(6\)", "lower train.clip_len"]),
        ("short_eval", [r"ep003\.npz: 3 frames, fewer than rollout\.context \(4\)", "lower rollout.context"]),
    ],
)
def test_reader_data_problems_at_load_time(tmp_path, damage, patterns):
    folder = tmp_path / ("nowhere" if damage == "missing_dir" else "teco")
    if damage == "empty_dir":
        folder.mkdir()
    elif damage != "missing_dir":
        files = teco_files(folder, n=2 if damage == "too_few" else 4)
        if damage == "truncated":
            files[1].write_bytes(files[1].read_bytes()[:100])
        elif damage == "missing_array":
            np.savez(files[1], frames=np.zeros((12, 16, 16, 3), np.uint8), actions=np.zeros(12, int))
        elif damage == "short_train":
            np.savez(files[0], video=np.zeros((4, 16, 16, 3), np.uint8), actions=np.zeros(4, int))
        elif damage == "short_eval":
            np.savez(files[3], video=np.zeros((3, 16, 16, 3), np.uint8), actions=np.zeros(3, int))
    p = reader_suite(tmp_path, folder)
    assert_refused(run(tmp_path, p), re.escape(str(p)), *patterns)
    assert_no_run_folder(tmp_path)


def test_reader_file_corrupt_inside_is_caught_when_read(tmp_path):
    """A flipped byte inside a compressed array passes the header check and fails its zip CRC when
    the file is read: before any training, with the file named."""
    files = teco_files(tmp_path / "teco")
    with zipfile.ZipFile(files[1]) as z:
        info = z.getinfo("video.npy")
    data = bytearray(files[1].read_bytes())
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26 : info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len  # the compressed array, after its local header
    data[start + info.compress_size - 8] ^= 0xFF  # in the frames, past the array header
    files[1].write_bytes(bytes(data))
    p = reader_suite(tmp_path, tmp_path / "teco")
    assert_refused(run(tmp_path, p), re.escape(str(p)), r"ep001\.npz: unreadable npz", "re-download it")
    assert_no_results(tmp_path)


def test_reader_errors_are_data_errors(tmp_path):
    """The exception types the CLI turns into exit 2 (and the built-in ones callers already catch)."""
    teco = DATASETS.get("teco_npz")
    with pytest.raises(DataNotFoundError) as e:
        teco(teco.Config(path=str(tmp_path / "nowhere")))
    assert isinstance(e.value, FileNotFoundError) and isinstance(e.value, DataError)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.npz").write_bytes(b"garbage")
    (tmp_path / "bad" / "b.npz").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"a\.npz: unreadable"):
        teco(teco.Config(path=str(tmp_path / "bad"), eval_episodes=1))


# --------------------------------------------------------------------------------------------
#                                   Data on disk: the shard cache
# --------------------------------------------------------------------------------------------


def fake_maze_episode(maze: int, length: int, seed: int, revisit_after=None, target_border=False):
    """A recording without MuJoCo: frame t shows the value t."""
    t = np.arange(length)
    return {
        "frames": np.broadcast_to((t % 256).astype(np.uint8)[:, None, None, None], (length, 64, 64, 3)).copy(),
        "actions": np.concatenate([[-1], np.full(length - 1, 1)]).astype(np.int8),
        "positions": np.stack([0.5 + (t // 2) % maze, np.full(length, 0.5)], -1).astype(np.float32),
        "directions": np.tile(np.array([[1.0, 0.0]], np.float32), (length, 1)),
        "layout": np.ones((maze, maze), np.uint8),
    }


def test_cache_regenerates_a_corrupt_shard_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(mm, "record_episode", fake_maze_episode)
    cfg = mm.MemoryMazeConfig(episodes=2, episode_len=8, frame_size=16, cache_dir=str(tmp_path))
    first = mm.MemoryMaze(cfg).train.frames.clone()
    (shard,) = tmp_path.rglob("train-s0/shard-00001.npz")
    shard.write_bytes(shard.read_bytes()[:-40])  # truncated, e.g. a full disk
    capsys.readouterr()
    with pytest.warns(CorruptShardWarning, match=rf"{re.escape(str(shard))}: checksum mismatch.*regenerating it"):
        again = mm.MemoryMaze(cfg).train.frames
    assert "generating 1 shard(s)" in capsys.readouterr().out
    assert np.array_equal(again.numpy(), first.numpy())
    manifest = json.loads((shard.parent / "manifest.json").read_text())
    assert manifest["shards"][shard.name]["sha256"] == hashlib.sha256(shard.read_bytes()).hexdigest()


def test_cache_of_another_config_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(mm, "record_episode", fake_maze_episode)
    cfg = mm.MemoryMaze.Config(episodes=1, episode_len=8, frame_size=16, cache_dir=str(tmp_path))
    mm.MemoryMaze(cfg)
    (manifest,) = tmp_path.rglob("train-s0/manifest.json")
    m = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**m, "seed": 7}))
    with pytest.raises(DataError, match=rf"{re.escape(str(manifest))}: manifest describes.*delete it"):
        mm.MemoryMaze(cfg)


def test_missing_environment_names_the_install_command(tmp_path, monkeypatch):
    """Episodes not in the cache are rendered; without the environment installed that stops with
    the pip command (exit 2, no cell), not an ImportError traceback."""
    monkeypatch.setitem(sys.modules, "memory_maze", None)  # import memory_maze raises ImportError
    sets = ["blocks=[none]", f"data.cache_dir={tmp_path / 'cache'}", "data.episodes=1", "data.episode_len=16"]
    res = run(tmp_path, SUITES / "memory_maze.yaml", *(a for s in sets for a in ("--set", s)))
    assert_refused(res, re.escape(str(SUITES / "memory_maze.yaml")), "memory_maze dataset", "pip install memory-maze")
    assert_no_results(tmp_path)


# --------------------------------------------------------------------------------------------
#                                   Training diverges
# --------------------------------------------------------------------------------------------


def test_nan_loss_stops_with_the_step_and_a_hint(tmp_path):
    res = run(tmp_path, FIXTURES / "tiny.yaml", "--set", "blocks=[none]", "--set", "train.lr=1e30")
    assert_refused(
        res,
        re.escape(str(FIXTURES / "tiny.yaml")),
        r"none-s0: loss is (nan|inf) at step \d+",
        r"lower train\.lr",
        "grad_clip",
    )
    assert_no_results(tmp_path)


# --------------------------------------------------------------------------------------------
#                                   Paths and quiet nonsense (issue 14)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, patterns",
    [
        ("name: ../../x\nblocks: [none]", [r"field 'name'", "becomes a folder name", r"no '/'"]),
        ("name: /abs\nblocks: [none]", [r"field 'name'", "becomes a folder name"]),
        ("name: ok\nblocks: [{name: none, label: a/b}]", [r"field 'blocks\[0\]\.label'", "folder name"]),
        ("name: ok\nblocks: [{name: none, label: ..x}]", [r"field 'blocks\[0\]\.label'", "folder name"]),
        ("name: ok\nblocks: [none]\nsweep: {model.window: [2, 2]}", ["sweep.model.window", "duplicate values"]),
        ("name: ok\nblocks: [none]\nsweep: {model.preset: [../x]}", ["sweep.model.preset", "cannot name a cell"]),
        ("name: ok\nblocks: [none]\nrollout: {sampling_steps: 5000}", ["sampling_steps", "> diffusion.levels"]),
        ("name: ok\nblocks: [none]\nseeds: [-1]", [r"seeds: \[-1\] out of range"]),
        ("name: ok\nblocks: [none]\nseeds: [4294967296]", ["out of range"]),
        ("name: ok\nblocks: [none]\nseeds: []", ["seeds: an empty list trains nothing", r"seeds: \[0\]"]),
        ("name: ok\nblocks: [none]\nmodel: {anchor: true}\ndiffusion: {prediction: v}",
         ["model.anchor", "set diffusion.prediction: x0 and train.mode: frame"]),
        ("name: ok\nblocks: [none]\nmodel: {anchor: true}\ndiffusion: {prediction: x0}\ntrain: {mode: chunk}",
         ["model.anchor", "train.mode: frame"]),
    ],
    ids=["name_dotdot", "name_abs", "label_slash", "label_dotdot", "sweep_dupes", "sweep_path", "steps", "seed_neg",
         "seed_huge", "seeds_empty", "anchor_needs_x0", "anchor_needs_frame_mode"],
)  # fmt: skip
def test_values_that_become_paths_or_nonsense_are_refused(tmp_path, body, patterns):
    p = suite_file(tmp_path, "include: _tiny_base.yaml\n" + body + "\n")
    assert_refused(run(tmp_path, p), re.escape(str(p)), *patterns)
    assert_no_run_folder(tmp_path)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["_tiny_base.yaml", "s.yaml"]  # nothing written


def test_negative_limit_steps_is_refused(tmp_path):
    res = cli.invoke(app, ["run", str(FIXTURES / "tiny.yaml"), "--results", str(tmp_path), "--limit-steps", "-5"])
    assert res.exit_code == 2 and "Traceback" not in res.output and "--limit-steps" in res.output, res.output
    assert not any(tmp_path.iterdir())  # refused before any work


def test_run_dir_refuses_a_foreign_folder(tmp_path):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "metrics.csv").write_text("precious\n")
    res = cli.invoke(app, ["run", str(FIXTURES / "tiny.yaml"), "--run-dir", str(foreign), "--no-progress"])
    assert_refused(res, "is not empty and is not a run folder", "--run-dir")
    assert (foreign / "metrics.csv").read_text() == "precious\n" and len(list(foreign.iterdir())) == 1


def test_yaml_alias_bomb_is_refused_before_any_work(tmp_path):
    layers = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    layers += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 9)]
    body = "name: bomb\nblocks: [{name: none}]\nbomb:\n" + "\n".join("  " + line for line in layers) + "\n"
    assert len(body) < 600  # 6**8 * 10 = 17 million values once expanded
    p = suite_file(tmp_path, "include: _tiny_base.yaml\n" + body)
    out = assert_refused(run(tmp_path, p), re.escape(str(p)), "expands to more than 100,000 values", "alias")
    assert "most of them under 'bomb'" in out
    assert_no_run_folder(tmp_path)


def test_a_suite_that_cannot_fit_in_memory_is_refused_before_allocating(tmp_path):
    body = "name: huge\nblocks: [none]\ndata: {name: synthetic, frame_size: 100000}\n"
    p = suite_file(tmp_path, "include: _tiny_base.yaml\n" + body)
    assert_refused(run(tmp_path, p), re.escape(str(p)), r"needs at least [\d,]+ GiB", "lower data.frame_size")
    assert_no_run_folder(tmp_path)


def test_cuda_device_without_cuda_is_a_clear_error(tmp_path):
    p = suite_file(tmp_path, HEAD + "blocks: [none]\ndevice: cuda\n")
    assert_refused(run(tmp_path, p), re.escape(str(p)), "field 'device'", "CUDA is not available", "device: auto")


def test_results_path_that_is_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "results").write_text("not a folder\n")
    res = run(tmp_path, FIXTURES / "tiny.yaml")
    assert_refused(res, "results", "is a file, not a folder", "--results")
    assert (tmp_path / "results").read_text() == "not a folder\n"


def test_a_suite_that_is_not_utf8_is_a_clear_error(tmp_path):
    p = tmp_path / "latin1.yaml"
    p.write_bytes("name: caf\xe9\nblocks: [none]\n".encode("latin-1"))
    assert_refused(run(tmp_path, p), re.escape(str(p)), "not UTF-8", "save the suite as UTF-8")


def test_run_dir_being_created_by_another_process_is_not_foreign(tmp_path):
    """A second process may see the first one's temp file before suite.resolved.yaml lands."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / ".suite.resolved.yaml.abc123.tmp").write_text("half")
    from rad_bench.rundir import prepare_run_dir

    suite = load_suite(FIXTURES / "tiny.yaml")
    assert prepare_run_dir(suite, run_dir, False, False, tmp_path) == run_dir
    assert (run_dir / "suite.resolved.yaml").is_file()


@pytest.mark.parametrize(
    "kwargs, patterns",
    [
        ('{mini_batch: "four"}', [r"field 'blocks\[0\]\.kwargs\.mini_batch'", r"'four' \(str\)", "takes int"]),
        ("{mini_batch: 2.5}", [r"kwargs\.mini_batch'", r"2\.5 \(float\)", "takes int"]),
        ("{gate: 3}", [r"kwargs\.gate'", r"3 \(int\)", "takes bool"]),
        ("{base_lr: [1]}", [r"kwargs\.base_lr'", "takes float"]),
    ],
    ids=["str_for_int", "float_for_int", "int_for_bool", "list_for_float"],
)
def test_mistyped_block_kwargs_values_are_refused_at_load(tmp_path, kwargs, patterns):
    p = suite_file(tmp_path, HEAD + f"blocks: [{{name: ttt, kwargs: {kwargs}}}]\n")
    assert_refused(run(tmp_path, p), re.escape(str(p)), *patterns)
    assert_no_run_folder(tmp_path)


@pytest.mark.parametrize("kwargs", ["{inner: big}", "{mini_batch: 0}"])
def test_a_kwargs_value_the_block_refuses_stops_before_training(tmp_path, kwargs):
    """Well-typed but refused by the block's constructor: caught by building it on the meta device."""
    p = suite_file(tmp_path, HEAD + f"blocks: [none, {{name: ttt, kwargs: {kwargs}}}]\n")
    assert_refused(run(tmp_path, p), re.escape(str(p)), r"field 'blocks\[1\]\.kwargs' \(block 'ttt'\)", "refuses")
    assert_no_results(tmp_path)


def test_invalid_rad_bench_impl_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("RAD_BENCH_IMPL", "fast")
    assert_refused(run(tmp_path, FIXTURES / "tiny.yaml"), "RAD_BENCH_IMPL='fast'", "auto, kernel, ref", "unset it")
    assert_no_run_folder(tmp_path)


def test_debug_shows_the_traceback_behind_the_message(tmp_path):
    p = suite_file(tmp_path, HEAD + "blocks: [none]\ndevice: cuda\n")
    plain = run(tmp_path, p)
    debug = cli.invoke(app, ["--debug", "run", str(p), "--results", str(tmp_path / "results"), "--no-progress"])
    assert debug.exit_code == plain.exit_code == 2
    assert "Traceback" not in plain.output and "Traceback" in debug.output and "DeviceUnavailableError" in debug.output
    assert plain.output.strip().splitlines()[-1] == debug.output.strip().splitlines()[-1]  # the same message last


def test_a_cell_path_that_resolves_outside_the_run_folder_is_refused(tmp_path):
    """The last line of defence: a symlinked samples/ folder would put files elsewhere."""
    run_dir, outside = tmp_path / "run", tmp_path / "elsewhere"
    outside.mkdir()
    args = ["run", str(FIXTURES / "tiny.yaml"), "--run-dir", str(run_dir), "--limit-steps", "1", "--no-progress",
            "--set", "metrics=[psnr]", "--set", "blocks=[none]"]  # fmt: skip
    res = cli.invoke(app, args)
    assert res.exit_code == 0, res.output
    shutil.rmtree(run_dir / "samples")
    (run_dir / "samples").symlink_to(outside, target_is_directory=True)
    shutil.rmtree(run_dir / "cells")  # so the cells would run again and write their samples
    assert_refused(cli.invoke(app, args), "samples", "outside", "remove the symlink")
    assert not any(outside.iterdir())
