"""Real-environment datasets without rendering: places and revisit tags from hand-built
trajectories, the retrieval reversal, the explorer on a kinematic stand-in, the shard cache
(resume, corruption, checksums), the public-format readers; plus two ``slow`` tests that run the
real Memory Maze and Crafter for a few steps when they are installed.

pytest tests/test_data_real.py            (add -m "not slow" to skip the real environments)
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from rad_bench.config import SuiteError, load_suite
from rad_bench.data import cache
from rad_bench.data import crafter as cr
from rad_bench.data import memory_maze as mm
from rad_bench.data.cache import CorruptShardWarning, EpisodeDataset, Episodes, ShardStore, bounce, motion_codes
from rad_bench.registry import DATASETS
from rad_bench.tags import tag_frames

SUITES = Path(__file__).resolve().parents[1] / "suites"
E, N, W, S = (1.0, 0.0), (0.0, 1.0), (-1.0, 0.0), (0.0, -1.0)  # agent_dir of Memory Maze


# --------------------------------------------------------------------------------------------
#                                   Places and tags
# --------------------------------------------------------------------------------------------


def test_heading_bins_are_centred_on_the_axes():
    angles = np.radians([0, 44, 46, 90, 134, 136, 180, -179, -90, -46, -44])
    dirs = np.stack([np.cos(angles), np.sin(angles)], -1)
    assert mm.heading_bins(dirs).tolist() == [0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 0]


def test_memory_maze_place_ids_from_cell_and_heading():
    pos = np.array([[0.1, 0.1], [0.9, 0.2], [1.5, 0.5], [1.5, 2.7], [8.99, 8.99], [9.2, -0.1]])
    dirs = np.array([E, E, N, W, S, E])
    # cell = y * 9 + x (clipped into the maze), place = cell * 4 + heading
    assert mm.place_ids(pos, dirs, 9).tolist() == [0, 0, 4 + 1, (2 * 9 + 1) * 4 + 2, 80 * 4 + 3, 8 * 4]


def test_revisit_tags_on_a_corridor_walk():
    # walk east along a corridor for 6 cells, turn around, walk back: same cells but facing west,
    # so the way back is new views; then turn east again at the start: a revisit of frame 0
    xs = [0, 1, 2, 3, 4, 5, 5, 4, 3, 2, 1, 0, 0]
    dirs = [E] * 6 + [W] * 6 + [E]
    pos = np.array([[x + 0.5, 0.5] for x in xs])
    places = mm.place_ids(pos, np.array(dirs), 9).tolist()
    # the walk out is the context: the way back, facing west, shows views it never showed
    assert tag_frames(places, context=6, reach=3)[:6] == ["novel"] * 6
    # the whole walk as context: facing east at the start again is frame 0's view, 12 frames ago
    assert tag_frames(places, context=12, reach=3) == ["revisit"]
    # with the heading ignored the way back would be revisits: the heading matters
    assert places[1] != places[10]


def test_crafter_places_ignore_facing_by_default_and_codes_clip():
    pos = np.array([[32, 32], [33, 32], [32, 32], [50, 32]])
    facing = np.array([[0, 1], [1, 0], [-1, 0], [1, 0]])
    ids = cr.place_ids(pos, facing, with_facing=False)
    assert ids[0] == ids[2] and ids[0] != ids[1]
    ids_f = cr.place_ids(pos, facing, with_facing=True)
    assert ids_f[0] != ids_f[2] and ids_f.tolist()[0] == (32 * 64 + 32) * 4 + 3
    codes = cr.place_codes(pos, facing, np.array([32, 32]), radius=2, with_facing=False)
    assert codes.tolist() == [2 * 5 + 2, 3 * 5 + 2, 2 * 5 + 2, 4 * 5 + 2]  # x = 50 clips to the border


# --------------------------------------------------------------------------------------------
#                                   Retrieval: playing an episode backward
# --------------------------------------------------------------------------------------------


def test_bounce_retraces_the_context():
    C = 5
    assert bounce(C + 4, C - 1).tolist() == [0, 1, 2, 3, 4, 3, 2, 1, 0]
    assert bounce(12, 2).tolist() == [0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2, 1]
    with pytest.raises(ValueError):
        bounce(4, 0)


def test_motion_codes_negate_the_undone_action():
    # recorded: frame 0 (no action), then forward, left, forward, right into frames 1..4
    acts = np.array([-1, mm.FORWARD, mm.LEFT, mm.FORWARD, mm.RIGHT])
    motion = torch.from_numpy(cache.onehot(acts, 6))
    idx = torch.from_numpy(bounce(9, 4))[None]  # 0 1 2 3 4 3 2 1 0
    codes = motion_codes(motion[None], idx)[0]
    e = torch.eye(6)
    expected = [
        torch.zeros(6),
        e[mm.FORWARD],
        e[mm.LEFT],
        e[mm.FORWARD],
        e[mm.RIGHT],
        -e[mm.RIGHT],  # 4 -> 3 undoes the right turn that led into frame 4
        -e[mm.FORWARD],  # 3 -> 2 undoes the forward step into frame 3
        -e[mm.LEFT],
        -e[mm.FORWARD],
    ]
    assert torch.equal(codes, torch.stack(expected))
    with pytest.raises(ValueError):
        motion_codes(motion[None], torch.tensor([[0, 2]]))


class _Toy(EpisodeDataset):
    """Hand-built episodes: frame t of episode e is filled with the value 10 * e + t."""

    code_dim = 20

    def __init__(self, retrace_prob: float = 0.0) -> None:
        E_, T = 3, 10
        frames = (10 * torch.arange(E_)[:, None] + torch.arange(T)).to(torch.uint8)
        frames = frames[:, :, None, None, None].expand(E_, T, 3, 4, 4).contiguous()
        acts = np.tile(np.array([-1] + [mm.FORWARD, mm.LEFT] * 4 + [mm.RIGHT]), (E_, 1))
        places = torch.arange(T).repeat(E_, 1) % 7  # a place repeats: 0..6, 0..2
        self.retrace_prob = retrace_prob
        self.use(Episodes(frames, torch.from_numpy(cache.onehot(acts, 6)), places, places + 10))

    def eval_set(self, clips: int, context: int, horizon: int):
        return self.play(self.train, bounce(context + horizon, context - 1))


def test_retrieval_eval_set_shows_the_context_in_reverse():
    ds = _Toy()
    C, H = 6, 5
    ev = ds.eval_set(3, C, H)
    value = ((ev.frames[:, :, 0, 0, 0] + 1) * 127.5).round().long()  # back to 10 * e + t
    shown = value % 10
    assert shown[0].tolist() == [0, 1, 2, 3, 4, 5, 4, 3, 2, 1, 0]
    assert torch.equal(value // 10, torch.arange(3)[:, None].expand(3, C + H))
    # the place id and the place code are those of the frame shown
    assert torch.equal(ev.places, shown % 7)
    code = ev.actions[..., 6:].argmax(-1)
    assert torch.equal(code, shown % 7 + 10) and torch.equal(ev.actions[..., 6:].sum(-1), torch.ones(3, C + H))
    # motion: + the recorded action while playing forward, - the undone one while playing back
    motion = ev.actions[0, :, :6]
    assert motion[0].abs().sum() == 0
    assert motion[5].argmax() == mm.FORWARD and motion[5].sum() == 1  # frame 5 was reached by forward
    assert motion[6].argmin() == mm.FORWARD and motion[6].sum() == -1  # 5 -> 4 undoes it
    assert motion[7].argmin() == mm.LEFT  # 4 -> 3 undoes the left turn into frame 4


def test_training_clips_retrace_consistently():
    ds = _Toy(retrace_prob=1.0)
    g = torch.Generator().manual_seed(0)
    idx = ds.clip_indices(64, 8, g)
    steps = idx[:, 1:] - idx[:, :-1]
    assert bool((steps.abs() == 1).all()) and idx.min() >= 0 and idx.max() < 10
    assert bool((steps > 0).any(1).all() & (steps < 0).any(1).all())  # every clip turns around
    frames, actions = ds.sample(16, 8, g)
    assert frames.shape == (16, 8, 3, 4, 4) and actions.shape == (16, 8, 6 + 20)
    assert frames.min() >= -1 and frames.max() <= 1
    # a motion code is never both forward and backward, and the first frame has none
    assert bool((actions[:, 0, :6] == 0).all())
    plain = _Toy(retrace_prob=0.0).clip_indices(32, 8, g)
    assert bool(((plain[:, 1:] - plain[:, :-1]) == 1).all())


def test_pose_features_tell_apart_views_that_share_a_place_id():
    """Four frames inside one cell and one heading bin: one place id, four different pose features;
    the same pose gives the same features."""
    pos = np.array([[2.1, 3.1], [2.35, 3.1], [2.6, 3.1], [2.6, 3.1]])
    ang = np.radians([0.0, 0.0, 18.0, 18.0])
    dirs = np.stack([np.cos(ang), np.sin(ang)], -1)
    assert len(set(mm.place_ids(pos, dirs, 9).tolist())) == 1
    f = mm.pose_features(pos, dirs, 9, 8)
    assert f.shape == (4, 48) and f.dtype == np.float32 and np.abs(f).max() <= 1
    assert np.array_equal(f[2], f[3])
    d = np.linalg.norm(f[:3, None] - f[None, :3], axis=-1)
    assert d[np.triu_indices(3, 1)].min() > 0.5  # a quarter cell or one 18-degree turn apart


def test_pose_features_need_the_pose_code():
    with pytest.raises(ValueError, match="action: move leaves out"):
        mm.MemoryMazeConfig(action="move", pose_features=4)
    assert mm.MemoryMazeConfig(pose_features=4).pose_features == 4


def test_pose_features_follow_the_frame_shown():
    """A retrace shows context frames again, with their poses: the action vector ends in the pose
    features of the frame shown, so a retraced frame's are those of the frame it repeats."""

    class Posed(_Toy):
        pose_dim = 2

        def __init__(self) -> None:
            super().__init__()
            t = torch.arange(10, dtype=torch.float32)
            self.train.poses = torch.stack([t, -t], -1)[None].repeat(3, 1, 1) + 100 * torch.arange(3.0)[:, None, None]
            self.use(self.train)

    ds = Posed()
    ev = ds.eval_set(3, 6, 5)
    assert ev.actions.shape[-1] == 6 + 20 + 2
    shown = torch.tensor([0, 1, 2, 3, 4, 5, 4, 3, 2, 1, 0], dtype=torch.float32)
    assert torch.equal(ev.actions[1, :, -2:], torch.stack([shown + 100, -shown + 100], -1))


# --------------------------------------------------------------------------------------------
#                                   Explorer and walker (no rendering)
# --------------------------------------------------------------------------------------------

LAYOUT = np.array(  # [y, x], y = 0 at the bottom; 1 = free
    [
        [1, 1, 1, 1, 1, 1, 1],
        [1, 0, 0, 1, 0, 0, 1],
        [1, 1, 1, 1, 1, 0, 1],
        [0, 0, 1, 0, 1, 0, 1],
        [1, 1, 1, 0, 1, 1, 1],
    ],
    np.uint8,
)


def test_shortest_path_on_the_layout():
    path = mm.shortest_path(LAYOUT.astype(bool), (0, 0), (0, 4))
    assert path[0] == (0, 0) and path[-1] == (0, 4)
    assert len(path) == 9  # (0, 3) is a wall: up column 0 to row 2, across to column 2, up, back west
    for a, b in zip(path, path[1:]):
        assert abs(a[0] - b[0]) + abs(a[1] - b[1]) == 1 and LAYOUT[b[1], b[0]]
    assert mm.shortest_path(LAYOUT.astype(bool), (0, 0), (1, 1)) == []  # a wall is unreachable


def test_steer_turns_toward_the_waypoint():
    pos = np.array([0.5, 0.5])
    assert mm.steer(pos, np.array(E), np.array([3.5, 0.5])) == mm.FORWARD
    assert mm.steer(pos, np.array(E), np.array([0.5, 3.5])) == mm.LEFT  # north is counter-clockwise
    assert mm.steer(pos, np.array(E), np.array([0.5, -2.5])) == mm.RIGHT
    assert mm.steer(pos, np.array(E), np.array([3.5, 1.5])) == mm.FORWARD_LEFT


def _kinematic_walk(layout: np.ndarray, steps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A stand-in for the MuJoCo ball: 0.25 cells forward, 18 degrees per turn, walls stop it."""
    free = layout.astype(bool)
    rng = np.random.default_rng(seed)
    explorer = mm.Explorer(layout, rng)
    pos, angle = np.array([0.5, 0.5]), 0.0
    trail, dirs = [], []
    turn = {mm.LEFT: 1, mm.RIGHT: -1, mm.FORWARD_LEFT: 1, mm.FORWARD_RIGHT: -1}
    for _ in range(steps):
        d = np.array([math.cos(angle), math.sin(angle)])
        trail.append(pos.copy())
        dirs.append(d)
        a = explorer.act(pos, d)
        angle += math.radians(18) * turn.get(a, 0)
        if a in (mm.FORWARD, mm.FORWARD_LEFT, mm.FORWARD_RIGHT):
            nxt = pos + 0.25 * np.array([math.cos(angle), math.sin(angle)])
            c = np.floor(nxt).astype(int)
            if 0 <= c[0] < free.shape[1] and 0 <= c[1] < free.shape[0] and free[c[1], c[0]]:
                pos = nxt
    return np.array(trail), np.array(dirs)


def test_explorer_covers_the_maze_and_comes_back():
    trail, dirs = _kinematic_walk(LAYOUT, 600, seed=0)
    cells = {tuple(c) for c in np.floor(trail).astype(int)}
    assert all(LAYOUT[y, x] for x, y in cells)
    assert len(cells) >= 0.9 * LAYOUT.sum()
    places = mm.place_ids(trail, dirs, 7).tolist()
    tags = tag_frames(places, context=300, reach=5)  # the second half against the first
    assert tags.count("revisit") > 50  # it leaves places and comes back to them


def test_explorer_revisit_after_stays_in_explored_cells():
    free = LAYOUT.astype(bool)
    ex = mm.Explorer(LAYOUT, np.random.default_rng(1), revisit_after=0)
    ex.visited = {(0, 0), (1, 0), (2, 0)}
    for _ in range(20):
        path = ex._plan((0, 0))
        assert path[-1] in ex.visited and all(free[y, x] for x, y in path)


def test_crafter_walker_goes_out_and_back():
    grid = np.ones((20, 20), bool)
    grid[10, 11] = False  # one obstacle next to the start (a tree)
    walker = cr.Walker(lambda c: bool(grid[c]), (10, 10), np.random.default_rng(0), radius=4, max_out=6, first_out=7)
    pos, trail = (10, 10), [(10, 10)]
    for _ in range(40):
        a = walker.act(pos)
        dx, dy = cr.STEP.get(a, (0, 0))
        nxt = (pos[0] + dx, pos[1] + dy)
        if grid[nxt]:
            pos = nxt
        trail.append(pos)
    assert all(max(abs(x - 10), abs(y - 10)) <= 4 and grid[x, y] for x, y in trail)
    assert trail[8:15] == trail[6::-1]  # frames 8.. retrace frames 6, 5, ..., 0
    assert len(set(trail)) > 8  # later excursions go elsewhere too


# --------------------------------------------------------------------------------------------
#                                   Shard cache
# --------------------------------------------------------------------------------------------

CALLS: list[int] = []


def make_toy_shard(scale: int, i: int) -> dict[str, np.ndarray]:
    """Deterministic shard ``i`` (top level so that spawned workers can unpickle it)."""
    CALLS.append(i)
    rng = np.random.default_rng(i)
    return {"frames": rng.integers(0, 255, (4, 8, 8, 3), dtype=np.uint8), "actions": np.arange(4) * scale}


def _store(tmp_path: Path) -> ShardStore:
    return ShardStore(tmp_path / "toy" / "train-s0", {"dataset": "toy", "config": {"a": 1}, "seed": 0})


def test_cache_root_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("RAD_BENCH_CACHE", str(tmp_path / "env"))
    assert cache.cache_root() == tmp_path / "env"
    assert cache.cache_root(str(tmp_path / "cfg")) == tmp_path / "cfg"
    monkeypatch.delenv("RAD_BENCH_CACHE")
    assert cache.cache_root() == Path("~/.cache/rad_bench").expanduser()
    assert cache.config_hash({"a": 1, "b": 2}) == cache.config_hash({"b": 2, "a": 1}) != cache.config_hash({"a": 2})


def test_cache_manifest_holds_checksums(tmp_path):
    CALLS.clear()
    shards = _store(tmp_path).load(3, lambda i: make_toy_shard(1, i))
    assert CALLS == [0, 1, 2] and len(shards) == 3
    assert np.array_equal(shards[1]["frames"], make_toy_shard(1, 1)["frames"])
    folder = tmp_path / "toy" / "train-s0"
    m = json.loads((folder / "manifest.json").read_text())
    assert m["dataset"] == "toy" and m["seed"] == 0 and m["config"] == {"a": 1}
    assert m["counts"] == {"shards": 3, "frames": 12}
    for name, entry in m["shards"].items():
        assert entry["sha256"] == hashlib.sha256((folder / name).read_bytes()).hexdigest()
    assert not list(folder.glob(".*tmp"))  # atomic writes leave no temp files


def test_cache_processes_asking_at_once_take_turns(tmp_path, capsys):
    """Two loaders of one split at once (a run's --workers helpers): one generates, the other waits and reads."""
    import threading
    import time

    CALLS.clear()

    def slow(i: int) -> dict[str, np.ndarray]:
        time.sleep(0.05)
        return make_toy_shard(1, i)

    out: list[list[dict[str, np.ndarray]]] = []
    threads = [threading.Thread(target=lambda: out.append(_store(tmp_path).load(3, slow))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(CALLS) == [0, 1, 2]  # each shard made once, not once per loader
    assert len(out) == 2 and all(np.array_equal(a["frames"], b["frames"]) for a, b in zip(*out))
    assert "another process is generating" in capsys.readouterr().out


def test_cache_resume_keeps_valid_shards(tmp_path):
    CALLS.clear()
    _store(tmp_path).load(2, lambda i: make_toy_shard(1, i))
    folder = tmp_path / "toy" / "train-s0"
    before = {p.name: p.stat().st_mtime_ns for p in folder.glob("shard-*.npz")}
    CALLS.clear()
    shards = _store(tmp_path).load(4, lambda i: make_toy_shard(1, i))  # more episodes: only the new ones
    assert CALLS == [2, 3] and len(shards) == 4
    assert all(folder.joinpath(n).stat().st_mtime_ns == t for n, t in before.items())
    CALLS.clear()
    _store(tmp_path).load(4, lambda i: make_toy_shard(1, i))
    assert CALLS == []


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage"])
def test_cache_detects_and_regenerates_a_corrupt_shard(tmp_path, damage):
    _store(tmp_path).load(3, lambda i: make_toy_shard(1, i))
    bad = tmp_path / "toy" / "train-s0" / "shard-00001.npz"
    data = bytearray(bad.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    elif damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data = bytearray(b"not an npz")
    bad.write_bytes(bytes(data))
    CALLS.clear()
    with pytest.warns(CorruptShardWarning, match=r"shard-00001\.npz.*(checksum mismatch|unreadable)"):
        shards = _store(tmp_path).load(3, lambda i: make_toy_shard(1, i))
    assert CALLS == [1]  # only the damaged shard is made again
    assert np.array_equal(shards[1]["frames"], make_toy_shard(1, 1)["frames"])
    m = json.loads((bad.parent / "manifest.json").read_text())
    assert m["shards"][bad.name]["sha256"] == hashlib.sha256(bad.read_bytes()).hexdigest()


def test_cache_without_manifest_entry_checks_the_file(tmp_path):
    store = _store(tmp_path)
    store.load(2, lambda i: make_toy_shard(1, i))
    folder = tmp_path / "toy" / "train-s0"
    (folder / "manifest.json").write_text("{ truncated")
    CALLS.clear()
    with pytest.warns(CorruptShardWarning, match="unreadable manifest"):
        _store(tmp_path).load(2, lambda i: make_toy_shard(1, i))
    assert CALLS == []  # both shards read back fine and are adopted
    assert set(json.loads((folder / "manifest.json").read_text())["shards"]) == {"shard-00000.npz", "shard-00001.npz"}
    # an unlisted shard that does not read is not used
    (folder / "manifest.json").unlink()
    (folder / "shard-00000.npz").write_bytes(b"PK\x03\x04 broken zip")
    with pytest.warns(CorruptShardWarning, match=r"shard-00000\.npz: unreadable"):
        _store(tmp_path).load(2, lambda i: make_toy_shard(1, i))
    assert CALLS == [0]


def test_cache_refuses_a_manifest_of_another_config(tmp_path):
    _store(tmp_path).load(1, lambda i: make_toy_shard(1, i))
    other = ShardStore(tmp_path / "toy" / "train-s0", {"dataset": "toy", "config": {"a": 2}, "seed": 0})
    with pytest.raises(cache.ShardError, match="manifest describes"):
        other.load(1, lambda i: make_toy_shard(1, i))


@pytest.mark.slow
def test_cache_generates_in_spawned_workers(tmp_path):
    from functools import partial

    shards = _store(tmp_path).load(3, partial(make_toy_shard, 2), workers=2)
    assert [s["actions"].tolist() for s in shards] == [[0, 2, 4, 6]] * 3


# --------------------------------------------------------------------------------------------
#                                   Datasets on fake recordings
# --------------------------------------------------------------------------------------------


def fake_maze_episode(maze: int, length: int, seed: int, revisit_after=None, target_border=False):
    """A recording without MuJoCo: the agent walks east along row 0 and turns; frame t = t."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    pos = np.stack([0.5 + (t // 2) % maze, np.full(length, 0.5)], -1)
    angle = np.where(t % 2 == 0, 0.0, np.pi / 2)
    return {
        "frames": np.broadcast_to((t % 256).astype(np.uint8)[:, None, None, None], (length, 64, 64, 3)).copy(),
        "actions": np.concatenate([[-1], rng.integers(0, 6, length - 1)]).astype(np.int8),
        "positions": pos.astype(np.float32),
        "directions": np.stack([np.cos(angle), np.sin(angle)], -1).astype(np.float32),
        "layout": np.ones((maze, maze), np.uint8),
    }


def test_memory_maze_dataset_on_fake_recordings(tmp_path, monkeypatch):
    monkeypatch.setattr(mm, "record_episode", fake_maze_episode)
    cfg = mm.MemoryMazeConfig(episodes=3, episode_len=20, frame_size=16, cache_dir=str(tmp_path))
    assert cfg.retrace_prob == 0.5 and cfg.profile == "cpu"
    ds = mm.MemoryMaze(cfg, seed=0)
    assert ds.action_dim == 6 + 9 * 9 * 4 and ds.frame_size == 16 and ds.train.frames.dtype == torch.uint8
    frames, actions = ds.sample(4, 8, torch.Generator().manual_seed(0))
    assert frames.shape == (4, 8, 3, 16, 16) and actions.shape == (4, 8, 330)
    ev = ds.eval_set(2, 6, 7)
    shown = ((ev.frames[:, :, 0, 0, 0] + 1) * 127.5).round().long()
    assert shown[0].tolist() == [0, 1, 2, 3, 4, 5, 4, 3, 2, 1, 0, 1, 2]
    assert torch.equal(ev.actions[..., 6:].argmax(-1), ev.places)  # place code = place id of the frame shown
    assert ev.places[0, 6] == ev.places[0, 4]
    assert len(list((tmp_path / "memory_maze").glob("*/eval-explore-len6/shard-*.npz"))) == 2
    reasoning = mm.MemoryMaze(cfg.model_copy(update={"task": "reasoning"}), seed=0).eval_set(2, 6, 7)
    assert ((reasoning.frames[0, :, 0, 0, 0] + 1) * 127.5).round().long().tolist() == list(range(13))
    with pytest.raises(ValueError, match="eval_episodes"):
        mm.MemoryMaze(cfg.model_copy(update={"eval_episodes": 1}), seed=0).eval_set(2, 6, 7)


def test_memory_maze_config_profiles_and_errors():
    assert mm.MemoryMazeConfig().episode_len == 128
    paper = mm.MemoryMazeConfig(profile="paper", episodes=5)
    assert (paper.episode_len, paper.episodes, paper.frame_size) == (2000, 5, 64)
    assert mm.MemoryMazeConfig(task="reasoning").retrace_prob == 0.0
    with pytest.raises(ValueError):
        mm.MemoryMazeConfig(maze=10)
    with pytest.raises(ValueError):
        mm.MemoryMazeConfig(grid=5)  # extra keys are errors
    assert mm.MemoryMazeConfig(episodes=7).generation() == mm.MemoryMazeConfig(episodes=9).generation()


@pytest.mark.parametrize("suite", ["memory_maze", "memory_maze_paper", "crafter"])
def test_suites_validate(suite, monkeypatch):
    """On a machine of the memory each is written for (the paper suite holds ~25 GiB of episodes in memory)."""
    monkeypatch.setattr("rad_bench.limits.machine_memory", lambda: 512 * 2**30)
    s = load_suite(SUITES / f"{suite}.yaml")
    assert s.data.name in ("memory_maze", "crafter")
    if getattr(s.data, "task", "retrieval") == "retrieval":
        assert s.rollout.context >= 2


def test_suite_typo_in_data_key_is_reported():
    with pytest.raises(SuiteError, match="data.epsiodes"):
        load_suite(SUITES / "memory_maze.yaml", ["data.epsiodes=3"])


# --------------------------------------------------------------------------------------------
#                                   Readers
# --------------------------------------------------------------------------------------------


def _teco_files(folder: Path, n: int = 4, T: int = 12) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        video = np.full((T, 16, 16, 3), i * 10, np.uint8) + np.arange(T, dtype=np.uint8)[:, None, None, None]
        np.savez(folder / f"ep{i:03d}.npz", video=video, actions=np.arange(T) % 3)


def _maze_files(folder: Path, n: int = 4, T: int = 12) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        ep = fake_maze_episode(9, T, i)
        action = np.zeros((T, 6), np.float32)
        action[np.arange(1, T), ep["actions"][1:]] = 1
        np.savez(
            folder / f"{i:04d}.npz",
            image=ep["frames"],
            action=action,
            agent_pos=ep["positions"],
            agent_dir=ep["directions"],
        )


def test_teco_reader(tmp_path):
    _teco_files(tmp_path / "teco")
    cls = DATASETS.get("teco_npz")
    ds = cls(cls.Config(path=str(tmp_path / "teco"), eval_episodes=2, frame_size=8), seed=0)
    assert ds.action_dim == 3 and len(ds.train) == 2 and ds.frame_size == 8
    frames, actions = ds.sample(3, 6, torch.Generator().manual_seed(0))
    assert frames.shape == (3, 6, 3, 8, 8) and actions.shape == (3, 6, 3)
    ev = ds.eval_set(2, 5, 4)
    assert ev.places[0].tolist() == [0, 1, 2, 3, 4, 3, 2, 1, 0]  # no pose: the recorded frame index
    assert tag_frames(ev.places[0].tolist(), 5, 3)[-1] == "revisit"
    first = ((ev.frames[:, 0, 0, 0, 0] + 1) * 127.5).round().long()
    assert first.tolist() == [20, 30]  # the held-out files are the last ones
    reasoning = cls(cls.Config(path=str(tmp_path / "teco"), eval_episodes=2, task="reasoning"), seed=0)
    assert set(tag_frames(reasoning.eval_set(2, 5, 4).places[0].tolist(), 5, 3)) == {"novel"}


def test_memory_maze_reader(tmp_path):
    _maze_files(tmp_path / "mm")
    cls = DATASETS.get("memory_maze_npz")
    ds = cls(cls.Config(path=str(tmp_path / "mm"), eval_episodes=1, frame_size=32), seed=0)
    assert ds.action_dim == 6 + 324 and len(ds.train) == 3
    ep = fake_maze_episode(9, 12, 0)
    assert ds.train.places[0].tolist() == mm.place_ids(ep["positions"], ep["directions"], 9).tolist()
    assert ds.train.motion[0, 0].sum() == 0 and ds.train.motion[0, 1].argmax() == ep["actions"][1]
    ev = ds.eval_set(1, 6, 5)
    assert ev.frames.shape == (1, 11, 3, 32, 32)
    assert torch.equal(ev.actions[..., 6:].argmax(-1), ev.places)


def test_reader_errors_name_the_path_and_keys(tmp_path):
    teco = DATASETS.get("teco_npz")
    with pytest.raises(FileNotFoundError, match=r"nowhere: no such folder.*video \(T, H, W, 3\) uint8"):
        teco(teco.Config(path=str(tmp_path / "nowhere")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no .npz files.*actions"):
        teco(teco.Config(path=str(tmp_path / "empty")))
    _teco_files(tmp_path / "few", n=2)
    with pytest.raises(ValueError, match="eval_episodes"):
        teco(teco.Config(path=str(tmp_path / "few"), eval_episodes=2))
    bad = tmp_path / "bad"
    _teco_files(bad)
    np.savez(bad / "ep001.npz", frames=np.zeros((12, 16, 16, 3), np.uint8), actions=np.zeros(12, int))
    with pytest.raises(ValueError, match=r"ep001\.npz: missing arrays \['video'\].*expected video"):
        teco(teco.Config(path=str(bad), eval_episodes=1))
    np.savez(bad / "ep001.npz", video=np.zeros((12, 16, 16), np.uint8), actions=np.zeros(12, int))
    with pytest.raises(ValueError, match=r"ep001\.npz: 'video' is uint8 \(12, 16, 16\)"):
        teco(teco.Config(path=str(bad), eval_episodes=1))
    (bad / "ep001.npz").write_bytes(b"truncated")
    with pytest.raises(ValueError, match=r"ep001\.npz: unreadable"):
        teco(teco.Config(path=str(bad), eval_episodes=1))
    mmz = DATASETS.get("memory_maze_npz")
    _maze_files(tmp_path / "mm")
    np.savez(tmp_path / "mm" / "0001.npz", image=np.zeros((12, 64, 64, 3), np.uint8), action=np.zeros((12, 6)))
    with pytest.raises(ValueError, match=r"0001\.npz: missing arrays \['agent_pos', 'agent_dir'\]"):
        mmz(mmz.Config(path=str(tmp_path / "mm"), eval_episodes=1))
    with pytest.raises(ValueError, match="Field required"):
        mmz.Config()


# --------------------------------------------------------------------------------------------
#                                   Real environments (a few seconds each)
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_real_memory_maze_episode():
    pytest.importorskip("memory_maze")
    ep = mm.record_episode(9, 20, seed=3)
    assert ep["frames"].shape == (20, 64, 64, 3) and ep["frames"].dtype == np.uint8
    assert ep["actions"][0] == -1 and set(ep["actions"][1:].tolist()) <= set(range(6))
    assert ep["layout"].shape == (9, 9) and ep["frames"].std() > 10
    xy = np.floor(ep["positions"]).astype(int)
    assert ep["layout"][xy[:, 1], xy[:, 0]].all()  # agent_pos is (x, y) on layout[y, x]
    assert np.allclose(np.linalg.norm(ep["directions"], axis=-1), 1, atol=1e-3)


@pytest.mark.slow
def test_real_crafter_episode_retraces():
    pytest.importorskip("crafter")
    C = 8
    ep = cr.record_episode(2 * C, seed=1, radius=6, max_out=6, first_out=C - 1)
    assert ep["frames"].shape == (2 * C, 64, 64, 3)
    pos = ep["positions"]
    moved = int((np.abs(np.diff(pos, axis=0)).sum(-1) > 0).sum())
    assert moved >= C  # the walker really walks
    assert all((pos[C + i] == pos[C - 2 - i]).all() for i in range(C - 1))
    # the same cell seen again shows the same map: frames match except for the player sprite
    same = [(C + i, C - 2 - i) for i in range(C - 1)]
    diff = [np.abs(ep["frames"][a].astype(int) - ep["frames"][b].astype(int)).mean() for a, b in same]
    assert max(diff) < 8


def test_cache_keys_of_the_shipped_configs_never_change():
    """The hash of a dataset's generation config names its cache folder: a refactor that changed it would
    silently regenerate hours of recorded episodes."""
    assert cache.config_hash(mm.MemoryMazeConfig().generation()) == "679e1bafbc0c"
    assert cache.config_hash(mm.MemoryMazeConfig(profile="paper").generation()) == "03e1367cb9f1"
    assert cache.config_hash(cr.CrafterConfig().generation()) == "786af85e5933"
    assert cache.config_hash(cr.CrafterConfig(radius=4, daylight=True).generation()) == "dd48b1e37a52"
