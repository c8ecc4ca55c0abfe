"""``memory_maze``: episodes of the real Memory Maze environment (Pasukonis et al. 2022), recorded
headless by a scripted explorer, with the retrieval and reasoning tasks of Po et al. (2025).

**Environment.** ``memory_maze.tasks`` (dm_env API, MuJoCo rendered with ``MUJOCO_GL=egl``, set
here unless already set), built with the published task's maze parameters for ``maze`` (9, 11,
13 or 15) and a time limit that fits ``episode_len``. Observations with the global observables:
``image`` (64, 64, 3), ``agent_pos`` (x, y) in cell units, ``agent_dir`` (unit vector) and
``maze_layout`` ``[y, x]`` (1 = free). The target-colour border is off by default
(``target_border``): it changes when a target is touched, so a revisited view would differ by
something no memory can know. ``memory_maze`` is imported only when episodes are generated;
install with ``pip install memory-maze gym "mujoco==3.17.0"`` (the ``[envs]`` extra).

**Explorer.** Walks to random target cells along shortest paths on the layout grid (unvisited
cells preferred, visited ones chosen too, so it leaves places and comes back), turning in place
when the next waypoint is off to the side and steering with forward+left/right otherwise; at a
target it sometimes looks around (turns in place), and when blocked it replans. Actions are the 6
discrete ones: noop, forward, left, right, forward+left, forward+right (about 18 degrees of turn
and 0.25 cells per step at full speed; the ball has momentum).

**Places.** A place is a cell and a heading: ``place = (y * maze + x) * 4 + heading_bin`` with
``(x, y) = floor(agent_pos)`` and the heading in 4 bins centred on east, north, west, south.
Equal ids = the same view up to a quarter turn and a cell, which is what revisit tags need.

**Action vector** per frame: the signed one-hot of the 6 actions (``rad_bench.data.cache.motion_codes``:
the action that led into the frame; negated when the frame is reached by playing backward; zeros
for a clip's first frame) + the one-hot place code of the frame shown (``maze**2 * 4`` entries,
the place id itself). As in ``synthetic``, the place code gives the model an equality key for
"same place"; Po et al. also condition on the agent pose. With ``pose_features: F`` the vector also
ends in ``6 F`` Fourier features of the exact pose (:func:`pose_features`): a place id is shared by
every view inside a cell and a 90-degree heading bin (often the last 4-5 frames of a walk), so only
the exact pose tells the model which of them a retrace returns to. ``action: move`` / ``pose`` keep
one part (``pose``: place code and pose features).

**Tasks** (``task``; the evaluation episodes are fresh mazes, fixed whatever the run seed):

- ``retrieval`` (Po et al.): explore for ``context`` frames, then retrace the path in reverse. The
  ground truth of rollout frame ``context + i`` is context frame ``context - 2 - i`` (and then it
  bounces forward again if the horizon is longer than the context). Its action vector is the
  *negated* one-hot of the action that led from that frame to the one after it (``-left`` where
  the explorer turned left: playing back undoes a left turn; ``-forward`` where it moved forward:
  the maze has no backward action, so "forward, undone" keeps its own code), and its place code
  and place id are those of the frame shown. Training clips retrace the same way with probability
  ``retrace_prob`` (default 0.5 for this task), so these codes are seen in training.
- ``reasoning``: continue the recorded episode for ``horizon`` frames (an ordinary continuation);
  after the context the explorer only picks targets among cells it has already visited, so the
  continuation stays inside the explored part of the maze. ``retrace_prob`` defaults to 0.

**Profiles.** ``cpu`` (default): 32 episodes of 128 frames at 32 px (64 px rendered, 2x2 area
average), generated in a few minutes on 2 cores. ``paper`` (Po et al.'s scale, for a GPU
machine): 1000 episodes of 2000 frames at the native 64 px, evaluated with 400 context + 400
generated frames (``suites/memory_maze_paper.yaml``); about 2M frames, some 8 CPU-hours of
rendering (use ``workers``) and 25 GB of uint8 frames in memory. Keys set in the suite override
the profile.

Episodes are cached as checksummed shards (``rad_bench.data.cache``); the training episodes depend
on ``data_seed``, not on the run seed, so every seed of a suite trains on the same recordings.
"""

from __future__ import annotations

import math
import os
from collections import deque
from functools import partial
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from rad_bench.data import EvalSet, MissingDependencyError, eval_seed
from rad_bench.data.cache import Arrays, Episodes, bounce, onehot, shard_seed, stack_frames
from rad_bench.data.recorded import RecordedConfig, RecordedEpisodes, shard_prefix
from rad_bench.registry import register_dataset
from rad_bench.utils import import_quietly

ACTIONS = ("noop", "forward", "left", "right", "forward_left", "forward_right")
NOOP, FORWARD, LEFT, RIGHT, FORWARD_LEFT, FORWARD_RIGHT = range(6)
CONTROL_HZ = 4.0  # memory_maze's control frequency: one action per 0.25 s of simulation
# the published tasks: maze size -> (targets, max rooms, max room size)
MAZES = {9: (3, 6, 5), 11: (4, 6, 5), 13: (5, 6, 5), 15: (6, 9, 3)}
EVAL_SEED = 10_000_019  # evaluation mazes are fixed, independent of the training data seed
GENERATOR_VERSION = 1  # bump when the explorer or the recording changes: it is part of the cache key
PROFILES = {
    "cpu": {"episode_len": 128, "episodes": 32, "frame_size": 32},
    "paper": {"episode_len": 2000, "episodes": 1000, "frame_size": 64},
}


class MemoryMazeConfig(RecordedConfig):
    profile: Literal["cpu", "paper"] = Field("cpu", description="defaults for the keys left unset")
    maze: Literal[9, 11, 13, 15] = Field(9, description="maze side in cells (the published task sizes)")
    frame_size: int | None = Field(None, ge=8, le=64, description="side in pixels (64 = native, else area-averaged)")
    retrace_prob: float | None = Field(None, ge=0, le=1, description="default: 0.5 for retrieval, 0 for reasoning")
    target_border: bool = Field(False, description="draw memory_maze's target-colour border")
    pose_features: int = Field(
        0, ge=0, le=16, description="Fourier frequencies of the exact pose appended to the place code (0: none)"
    )

    @model_validator(mode="after")
    def _profile(self) -> MemoryMazeConfig:
        for k, v in PROFILES[self.profile].items():
            if getattr(self, k) is None:
                setattr(self, k, v)
        if self.retrace_prob is None:
            self.retrace_prob = 0.5 if self.task == "retrieval" else 0.0
        if self.pose_features and self.action == "move":
            raise ValueError(
                "pose_features are part of the pose code, which action: move leaves out; "
                "use action: move+pose or pose_features: 0"
            )
        return self

    def generation(self) -> dict[str, Any]:
        """What the content of a training episode depends on (the cache key)."""
        return {
            "maze": self.maze,
            "episode_len": self.episode_len,
            "target_border": self.target_border,
            "version": GENERATOR_VERSION,
        }


# --------------------------------------------------------------------------------------------
#                                   Places
# --------------------------------------------------------------------------------------------


def heading_bins(directions: np.ndarray) -> np.ndarray:
    """``(..., 2)`` unit vectors -> 0 east, 1 north, 2 west, 3 south (bins centred on the axes)."""
    angle = np.arctan2(directions[..., 1], directions[..., 0])
    return np.round(angle / (np.pi / 2)).astype(np.int64) % 4


def cells(positions: np.ndarray, maze: int) -> np.ndarray:
    """``(..., 2)`` positions (x, y) in cell units -> cell index ``y * maze + x``."""
    xy = np.clip(np.floor(positions).astype(np.int64), 0, maze - 1)
    return xy[..., 1] * maze + xy[..., 0]


def place_ids(positions: np.ndarray, directions: np.ndarray, maze: int) -> np.ndarray:
    """Place id per frame: ``cell * 4 + heading_bin``, in ``[0, maze**2 * 4)``."""
    return cells(positions, maze) * 4 + heading_bins(directions)


# --------------------------------------------------------------------------------------------
#                                   Explorer
# --------------------------------------------------------------------------------------------


def shortest_path(free: np.ndarray, start: tuple[int, int], goal: tuple[int, int]) -> list[tuple[int, int]]:
    """Cells ``(x, y)`` from ``start`` to ``goal`` (both included) on the 4-connected grid
    ``free[y, x]``; empty if unreachable. The start may be a wall cell (the agent's rounding)."""
    h, w = free.shape
    prev: dict[tuple[int, int], tuple[int, int] | None] = {start: None}
    queue = deque([start])
    while queue:
        c = queue.popleft()
        if c == goal:
            path = [c]
            while (p := prev[path[-1]]) is not None:
                path.append(p)
            return path[::-1]
        for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            n = (c[0] + dx, c[1] + dy)
            if 0 <= n[0] < w and 0 <= n[1] < h and free[n[1], n[0]] and n not in prev:
                prev[n] = c
                queue.append(n)
    return []


def steer(position: np.ndarray, direction: np.ndarray, waypoint: np.ndarray) -> int:
    """The discrete action that heads for ``waypoint``: turn in place when it is well off to the
    side (left turns counter-clockwise in (x, y)), curve while moving when slightly off, else
    forward."""
    v = waypoint - position
    err = math.atan2(v[1], v[0]) - math.atan2(direction[1], direction[0])
    err = (err + math.pi) % (2 * math.pi) - math.pi
    if abs(err) > math.radians(40):
        return LEFT if err > 0 else RIGHT
    if abs(err) > math.radians(10):
        return FORWARD_LEFT if err > 0 else FORWARD_RIGHT
    return FORWARD


class Explorer:
    """Scripted agent for one maze: random targets, shortest paths, look-arounds, replanning.

    ``act(position, direction)`` returns the next action; it keeps ``visited`` cells. With
    ``revisit_after`` it only picks visited cells as targets from that step on."""

    reach = 0.3  # a waypoint (cell centre) counts as reached within this distance
    fresh = 0.7  # probability of heading for an unvisited cell while there are any
    look = 0.3  # probability of turning around in place on arrival
    blocked_steps = 6  # forward actions without moving before replanning

    def __init__(self, layout: np.ndarray, rng: np.random.Generator, revisit_after: int | None = None) -> None:
        self.free = np.asarray(layout).astype(bool)
        self.rng = rng
        self.revisit_after = revisit_after
        self.visited: set[tuple[int, int]] = set()
        self.path: list[tuple[int, int]] = []
        self.spin, self.spin_action, self.blocked, self.t = 0, LEFT, 0, 0
        self.last: np.ndarray | None = None

    def act(self, position: np.ndarray, direction: np.ndarray) -> int:
        position, direction = np.asarray(position, float), np.asarray(direction, float)
        cell = (int(position[0]), int(position[1]))
        self.visited.add(cell)
        moved = self.last is not None and float(np.abs(position - self.last).max()) > 0.02
        self.last, self.t = position, self.t + 1
        if self.spin > 0:
            self.spin -= 1
            return self.spin_action
        self.blocked = 0 if moved else self.blocked + 1
        if self.blocked >= self.blocked_steps:  # against a wall: turn a bit and plan again
            self.path, self.blocked = [], 0
            return self._start_spin(int(self.rng.integers(3, 9)))
        while self.path and np.hypot(*(position - self._centre(self.path[0]))) < self.reach:
            self.path.pop(0)
            if not self.path and self.rng.random() < self.look:
                return self._start_spin(int(self.rng.integers(4, 21)))
        if not self.path:
            self.path = self._plan(cell)
        if not self.path:
            return self._start_spin(4)
        action = steer(position, direction, self._centre(self.path[0]))
        if action in (LEFT, RIGHT):
            self.blocked = 0  # turning in place is not being blocked
        return action

    def _start_spin(self, steps: int) -> int:
        self.spin, self.spin_action = steps - 1, int(self.rng.choice([LEFT, RIGHT]))
        return self.spin_action

    @staticmethod
    def _centre(c: tuple[int, int]) -> np.ndarray:
        return np.array([c[0] + 0.5, c[1] + 0.5])

    def _plan(self, cell: tuple[int, int]) -> list[tuple[int, int]]:
        ys, xs = np.nonzero(self.free)
        every = [(int(x), int(y)) for x, y in zip(xs, ys) if (x, y) != cell]
        if self.revisit_after is not None and self.t >= self.revisit_after:
            pool = [c for c in every if c in self.visited] or every
        else:
            fresh = [c for c in every if c not in self.visited]
            pool = fresh if fresh and self.rng.random() < self.fresh else every
        for _ in range(8):
            goal = pool[int(self.rng.integers(len(pool)))]
            path = shortest_path(self.free, cell, goal)
            if path:
                return path  # starts with the current cell: first re-centre in it
        return []


# --------------------------------------------------------------------------------------------
#                                   Recording
# --------------------------------------------------------------------------------------------


def make_env(maze: int, length: int, seed: int, target_border: bool = False) -> Any:
    """A Memory Maze dm_env with global observables, long enough for ``length`` frames."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    try:
        tasks = import_quietly("memory_maze.tasks")
    except ImportError as e:
        raise MissingDependencyError(
            f"the memory_maze dataset renders the real environment and needs it installed: "
            f'pip install memory-maze gym "mujoco==3.17.0" (or the [envs] extra); import failed: {e}'
        ) from e
    import absl.logging  # dm_control warns once per reset about a frozen joint; not actionable here

    absl.logging.set_verbosity(absl.logging.ERROR)
    targets, rooms, room_max = MAZES[maze]
    return tasks._memory_maze(  # the public memory_maze_9x9() etc. fix the time limit; we need longer ones
        maze,
        targets,
        length / CONTROL_HZ + 1.0,
        max_rooms=rooms,
        room_max_size=room_max,
        global_observables=True,
        target_color_in_image=target_border,
        seed=seed,
    )


def record_episode(
    maze: int, length: int, seed: int, revisit_after: int | None = None, target_border: bool = False
) -> Arrays:
    """One episode of ``length`` frames driven by :class:`Explorer`: ``frames`` uint8 (T, 64, 64, 3),
    ``actions`` int8 (T,) (the action that led into each frame, -1 for the first), ``positions``
    and ``directions`` float32 (T, 2), ``layout`` uint8 (maze, maze)."""
    env = make_env(maze, length, seed, target_border)
    try:
        obs = env.reset().observation
        explorer = Explorer(obs["maze_layout"], np.random.default_rng(seed), revisit_after)
        rec: dict[str, list[Any]] = {"frames": [], "actions": [], "positions": [], "directions": []}
        action = -1
        for t in range(length):
            rec["frames"].append(obs["image"])
            rec["actions"].append(action)
            rec["positions"].append(obs["agent_pos"])
            rec["directions"].append(obs["agent_dir"])
            if t == length - 1:
                break
            action = explorer.act(obs["agent_pos"], obs["agent_dir"])
            step = env.step(action)
            if step.last() and t < length - 2:
                raise RuntimeError(f"memory_maze episode ended after {t + 2} frames, {length} requested")
            obs = step.observation
        layout = np.asarray(obs["maze_layout"], np.uint8)
    finally:
        env.close()
    return {
        "frames": np.stack(rec["frames"]).astype(np.uint8),
        "actions": np.array(rec["actions"], np.int8),
        "positions": np.stack(rec["positions"]).astype(np.float32),
        "directions": np.stack(rec["directions"]).astype(np.float32),
        "layout": layout,
    }


def make_shard(gen: dict[str, Any], seed: int, split: int, revisit_after: int | None, length: int, i: int) -> Arrays:
    """Shard ``i`` of a split: one episode whose maze and explorer are seeded by (seed, split, i)."""
    s = shard_seed(seed, split, i)
    return record_episode(gen["maze"], length, s, revisit_after, gen["target_border"])


# --------------------------------------------------------------------------------------------
#                                   Dataset
# --------------------------------------------------------------------------------------------


def pose_features(positions: np.ndarray, directions: np.ndarray, maze: int, frequencies: int) -> np.ndarray:
    """``(..., 6 F)`` float32 Fourier features of the exact pose: ``sin, cos`` of ``2 pi f x / maze``,
    ``2 pi f y / maze`` and ``f * heading`` for ``f = 1..F``. Equal poses give equal features and
    near poses near ones (the finest wavelength, ``maze / F`` cells and ``360 / F`` degrees, is about
    a cell at F = 8), where a place id lumps every view inside a cell and a 90-degree bin together."""
    f = np.arange(1, frequencies + 1, dtype=np.float64)
    heading = np.arctan2(directions[..., 1], directions[..., 0])[..., None]
    angles = [2 * np.pi * f * positions[..., i : i + 1] / maze for i in (0, 1)] + [f * heading]
    return np.concatenate([g(a) for a in angles for g in (np.sin, np.cos)], axis=-1).astype(np.float32)


def episodes_from_shards(shards: list[Arrays], maze: int, frame_size: int, action: str, pose: int = 0) -> Episodes:
    places = torch.from_numpy(np.stack([place_ids(s["positions"], s["directions"], maze) for s in shards]))
    motion = torch.from_numpy(np.stack([onehot(s["actions"].astype(np.int64), len(ACTIONS)) for s in shards]))
    if action == "pose":
        motion = motion[..., :0]
    poses = None
    if pose and action != "move":
        poses = torch.from_numpy(np.stack([pose_features(s["positions"], s["directions"], maze, pose) for s in shards]))
    return Episodes(frames=stack_frames(shards, frame_size), motion=motion, places=places, codes=places, poses=poses)


@register_dataset("memory_maze")
class MemoryMaze(RecordedEpisodes):
    Config = MemoryMazeConfig
    dataset = "memory_maze"
    arrays = ("frames", "actions", "positions", "directions")
    cfg: MemoryMazeConfig

    def __init__(self, cfg: MemoryMazeConfig, seed: int = 0) -> None:
        super().__init__(cfg)
        self.retrace_prob = float(cfg.retrace_prob or 0.0)
        self.code_dim = 0 if cfg.action == "move" else cfg.maze**2 * 4
        self.pose_dim = 0 if cfg.action == "move" else 6 * cfg.pose_features
        assert cfg.episodes is not None and cfg.episode_len is not None
        shards = self._shards(f"train-s{cfg.data_seed}", cfg.data_seed, 0, cfg.episodes, cfg.episode_len, None)
        self.use(self._episodes(shards))

    def _shards(self, split: str, seed: int, code: int, n: int, length: int, revisit_after: int | None) -> list[Arrays]:
        make = partial(make_shard, self.cfg.generation(), seed, code, revisit_after, length)
        return self.load_shards(split, seed, n, length, make)

    def _episodes(self, shards: list[Arrays]) -> Episodes:
        assert self.cfg.frame_size is not None
        return episodes_from_shards(shards, self.cfg.maze, self.cfg.frame_size, self.cfg.action, self.cfg.pose_features)

    def eval_set(self, clips: int, context: int, horizon: int, split: str = "test") -> EvalSet:
        n, seed, prefix = self.eval_count(clips, context), eval_seed(EVAL_SEED, split), shard_prefix(split)
        if self.cfg.task == "retrieval":
            shards = self._shards(f"{prefix}-explore-len{context}", seed, 1, n, context, None)
            idx = bounce(context + horizon, context - 1)
        else:
            length = context + horizon
            shards = self._shards(f"{prefix}-revisit{context}-len{length}", seed, 1, n, length, context)
            idx = np.arange(length)
        return self.play(self._episodes(shards[:clips]), idx)
