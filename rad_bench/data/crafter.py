"""``crafter``: episodes of Crafter (Hafner 2021), a top-down Minecraft-like 2-D world, recorded by
a scripted walker that leaves and comes back. It stands in for Minecraft where MineRL is
unavailable: the view is a 9 x 7 cell window centred on the player (plus an inventory strip),
so walking back over a cell shows the same map again.

**Environment.** ``crafter.Env(size=(64, 64), seed=...)`` (CPU, no OpenGL; ``pip install crafter``,
imported only when episodes are generated). The day-night cycle is off by default (``daylight``):
at night crafter darkens the view and adds random noise, so a revisited place would look
different for reasons no memory can know (and zombies only spawn in the dark).

**Walker.** Excursions from the start: walk out ``k`` steps (a random walk over grass, sand and
path that prefers cells it has not visited and stays within ``radius`` cells of the start; water,
trees, stone and lava are never entered), then walk back along the same cells, all the way or
part of it. A move blocked by a creature is retried; the recorded positions are always the
player's real ones. Moves are crafter's ``move_left/right/up/down``; a move also turns the player.

**Places.** ``place: cell`` (default): the player's world cell, ``x * 64 + y``: the view is
top-down, so the same cell shows the same map whichever way the player faces (the facing only
changes the player sprite, which the move action already gives). ``place: cell+facing`` also
splits by facing (``* 4 + facing``), as for the first-person ``memory_maze``.

**Action vector** per frame: signed one-hot of the 5 moves used (noop, left, right, up, down;
``rad_bench.data.cache.motion_codes``) + the one-hot place code: the player's cell on the
``(2 * radius + 1)**2`` grid around the start (clipped at its border; times 4 facings with
``place: cell+facing``).

**Tasks.** ``retrieval`` (default): the evaluation episode walks out for ``context - 1`` moves
and then walks back the same way during the rollout; unlike Memory Maze the return is real
crafter frames (a top-down view needs no playback reversal), then excursions continue if the
horizon is longer. ``reasoning``: an ordinary episode of excursions for ``context + horizon``
frames. Evaluation worlds are fixed, independent of the run seed; training episodes depend on
``data_seed``. Episodes are cached as checksummed shards (``rad_bench.data.cache``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field

from rad_bench.data import EvalSet, MissingDependencyError, eval_seed
from rad_bench.data.cache import Arrays, Episodes, onehot, shard_seed, stack_frames
from rad_bench.data.recorded import RecordedConfig, RecordedEpisodes, shard_prefix
from rad_bench.registry import register_dataset
from rad_bench.utils import import_quietly

MOVES = ("noop", "move_left", "move_right", "move_up", "move_down")  # crafter's action ids 0..4
STEP = {1: (-1, 0), 2: (1, 0), 3: (0, -1), 4: (0, 1)}  # action -> (dx, dy); y grows downwards
FACING = {(1, 0): 0, (0, -1): 1, (-1, 0): 2, (0, 1): 3}  # east, north (up), west, south (down)
GROUND = ("grass", "sand", "path")
WORLD = 64  # crafter's default area
EVAL_SEED = 10_000_019
GENERATOR_VERSION = 1


class CrafterConfig(RecordedConfig):
    frame_size: int = Field(32, ge=8, le=64, description="side in pixels (64 = rendered, else area-averaged)")
    episode_len: int = Field(128, ge=2)
    episodes: int = Field(64, ge=1, description="training episodes")
    radius: int = Field(8, ge=1, description="the walker stays within this many cells of the start")
    max_out: int = Field(12, ge=1, description="longest excursion (moves out) in training episodes")
    place: Literal["cell", "cell+facing"] = "cell"
    daylight: bool = Field(False, description="keep crafter's day-night cycle (night adds noise)")

    def generation(self) -> dict[str, Any]:
        keys = ("episode_len", "radius", "max_out", "daylight")
        return {**{k: getattr(self, k) for k in keys}, "version": GENERATOR_VERSION}


# --------------------------------------------------------------------------------------------
#                                   Places
# --------------------------------------------------------------------------------------------


def facing_bins(facing: np.ndarray) -> np.ndarray:
    """``(..., 2)`` crafter facings (dx, dy) -> 0 east, 1 north (up), 2 west, 3 south (down)."""
    f = np.asarray(facing).astype(np.int64)
    return np.where(f[..., 0] == 1, 0, np.where(f[..., 1] == -1, 1, np.where(f[..., 0] == -1, 2, 3)))


def place_ids(positions: np.ndarray, facing: np.ndarray, with_facing: bool) -> np.ndarray:
    """Place id per frame: world cell ``x * 64 + y`` (never clipped), ``* 4 + facing`` if asked."""
    p = np.asarray(positions).astype(np.int64)
    cell = p[..., 0] * WORLD + p[..., 1]
    return cell * 4 + facing_bins(facing) if with_facing else cell


def place_codes(
    positions: np.ndarray, facing: np.ndarray, start: np.ndarray, radius: int, with_facing: bool
) -> np.ndarray:
    """Index of the one-hot place code: cell on the ``(2r+1)^2`` grid around ``start`` (clipped)."""
    side = 2 * radius + 1
    d = np.clip(np.asarray(positions).astype(np.int64) - np.asarray(start) + radius, 0, side - 1)
    cell = d[..., 0] * side + d[..., 1]
    return cell * 4 + facing_bins(facing) if with_facing else cell


# --------------------------------------------------------------------------------------------
#                                   Walker
# --------------------------------------------------------------------------------------------


class Walker:
    """Excursions out and back. ``open_(cell)`` says whether the player may step onto a cell.

    ``act(position)`` returns the next move; the first excursion is ``first_out`` moves long and
    returns all the way (the retrieval task), later ones are ``1 .. max_out`` moves long and
    return all or part of the way."""

    fresh = 0.85  # probability of preferring unvisited cells on the way out

    def __init__(
        self,
        open_: Callable[[tuple[int, int]], bool],
        start: tuple[int, int],
        rng: np.random.Generator,
        radius: int,
        max_out: int,
        first_out: int | None = None,
    ) -> None:
        self.open, self.start, self.rng, self.radius, self.max_out = open_, start, rng, radius, max_out
        self.seen = {start}
        self.trail: list[tuple[int, int]] = []  # cells to walk back through, most recent last
        self.out_left = first_out if first_out is not None else self._excursion()
        self.back_left, self.tries = 0, 0
        self.full_return = first_out is not None
        self.last: tuple[int, int] | None = None

    def _excursion(self) -> int:
        return int(self.rng.integers(1, self.max_out + 1))

    def act(self, position: tuple[int, int]) -> int:
        position = (int(position[0]), int(position[1]))
        self.seen.add(position)
        self.tries = self.tries + 1 if position == self.last else 0
        self.last = position
        for _ in range(3):  # at most: finish the way out, finish the way back, start an excursion
            if self.out_left > 0:
                move = self._out_move(position)
                if move:
                    self.out_left -= 1
                    self.trail.append(position)
                    if self.out_left == 0:
                        self._turn_back()
                    return move
                self._turn_back(boxed_in=True)
            while self.back_left > 0 and self.trail and self.trail[-1] == position:
                self.trail.pop()  # arrived at the next cell of the way back
                self.back_left -= 1
            if self.back_left > 0 and self.trail and self.tries < 4:
                dx, dy = self.trail[-1][0] - position[0], self.trail[-1][1] - position[1]
                if abs(dx) + abs(dy) == 1:
                    return next(a for a, s in STEP.items() if s == (dx, dy))
            # back home (or blocked by a creature, or pushed off the trail): a new excursion from here
            self.trail, self.back_left, self.full_return = [], 0, False
            self.out_left = self._excursion()
        return 0  # boxed in on every side: wait

    def _turn_back(self, boxed_in: bool = False) -> None:
        n = len(self.trail)
        self.out_left = 0
        self.back_left = n if self.full_return or boxed_in else int(self.rng.integers(1, n + 1))

    def _out_move(self, position: tuple[int, int]) -> int:
        options = []
        for a, (dx, dy) in STEP.items():
            c = (position[0] + dx, position[1] + dy)
            if max(abs(c[0] - self.start[0]), abs(c[1] - self.start[1])) <= self.radius and self.open(c):
                options.append((a, c))
        if not options:
            return 0
        fresh = [o for o in options if o[1] not in self.seen]
        pool = fresh if fresh and self.rng.random() < self.fresh else options
        return int(pool[int(self.rng.integers(len(pool)))][0])


# --------------------------------------------------------------------------------------------
#                                   Recording
# --------------------------------------------------------------------------------------------


def make_env(seed: int, daylight: bool) -> Any:
    try:
        crafter = import_quietly("crafter")
    except ImportError as e:
        raise MissingDependencyError(
            f"the crafter dataset runs the real environment and needs it installed: pip install crafter "
            f"(or the [envs] extra); import failed: {e}"
        ) from e
    env = crafter.Env(size=(64, 64), seed=seed)
    if not daylight:  # full daylight at every step: no darkening, no night noise, no zombie spawns
        env._update_time = lambda: setattr(env._world, "daylight", 1.0)
    return env


def record_episode(
    length: int, seed: int, radius: int, max_out: int, first_out: int | None = None, daylight: bool = False
) -> Arrays:
    """One episode of ``length`` frames: ``frames`` uint8 (T, 64, 64, 3), ``actions`` int8 (T,)
    (move into each frame, -1 for the first), ``positions`` and ``facing`` int16 (T, 2), ``start``."""
    for attempt in range(10):  # the player can die (e.g. an arrow); then take another world
        env = make_env(shard_seed(seed, attempt), daylight)
        frame = env.reset()
        player, world = env._player, env._world

        def open_(c: tuple[int, int]) -> bool:
            if not (0 <= c[0] < WORLD and 0 <= c[1] < WORLD):
                return False
            material, obj = world[c]
            return material in GROUND and obj is None

        start = tuple(int(v) for v in player.pos)
        walker = Walker(open_, start, np.random.default_rng(seed), radius, max_out, first_out)
        rec: dict[str, list[Any]] = {"frames": [], "actions": [], "positions": [], "facing": []}
        action, done = -1, False
        for t in range(length):
            rec["frames"].append(frame)
            rec["actions"].append(action)
            rec["positions"].append(np.array(player.pos))
            rec["facing"].append(np.array(player.facing))
            if t == length - 1:
                break
            action = walker.act(tuple(player.pos))
            frame, _, done, _ = env.step(action)
            if done:
                break
        if not done:
            return {
                "frames": np.stack(rec["frames"]).astype(np.uint8),
                "actions": np.array(rec["actions"], np.int8),
                "positions": np.stack(rec["positions"]).astype(np.int16),
                "facing": np.stack(rec["facing"]).astype(np.int16),
                "start": np.array(start, np.int16),
            }
    raise RuntimeError(f"crafter: the player died in 10 worlds in a row (seed {seed})")


def make_shard(gen: dict[str, Any], seed: int, split: int, length: int, first_out: int | None, i: int) -> Arrays:
    """Shard ``i`` of a split: one episode seeded by (seed, split, i)."""
    s = shard_seed(seed, split, i)
    return record_episode(length, s, gen["radius"], gen["max_out"], first_out, gen["daylight"])


# --------------------------------------------------------------------------------------------
#                                   Dataset
# --------------------------------------------------------------------------------------------


@register_dataset("crafter")
class Crafter(RecordedEpisodes):
    Config = CrafterConfig
    dataset = "crafter"
    arrays = ("frames", "actions", "positions", "facing", "start")
    cfg: CrafterConfig

    def __init__(self, cfg: CrafterConfig, seed: int = 0) -> None:
        super().__init__(cfg)
        self.with_facing = cfg.place == "cell+facing"
        self.code_dim = 0 if cfg.action == "move" else (2 * cfg.radius + 1) ** 2 * (4 if self.with_facing else 1)
        shards = self._shards(f"train-s{cfg.data_seed}", cfg.data_seed, 0, cfg.episodes, cfg.episode_len, None)
        self.use(self._episodes(shards))

    def _shards(self, split: str, seed: int, code: int, n: int, length: int, first_out: int | None) -> list[Arrays]:
        make = partial(make_shard, self.cfg.generation(), seed, code, length, first_out)
        return self.load_shards(split, seed, n, length, make)

    def _episodes(self, shards: list[Arrays]) -> Episodes:
        def stack(f: Callable[[Arrays], np.ndarray]) -> torch.Tensor:
            return torch.from_numpy(np.stack([f(s) for s in shards]))

        motion = stack(lambda s: onehot(s["actions"].astype(np.int64), len(MOVES)))
        if self.cfg.action == "pose":
            motion = motion[..., :0]
        r, facing = self.cfg.radius, self.with_facing
        return Episodes(
            frames=stack_frames(shards, self.cfg.frame_size),
            motion=motion,
            places=stack(lambda s: place_ids(s["positions"], s["facing"], facing)),
            codes=stack(lambda s: place_codes(s["positions"], s["facing"], s["start"], r, facing)),
        )

    def eval_set(self, clips: int, context: int, horizon: int, split: str = "test") -> EvalSet:
        n = self.eval_count(clips, context)
        length = context + horizon
        first_out = context - 1 if self.cfg.task == "retrieval" else None
        name = f"{shard_prefix(split)}-{self.cfg.task}-c{context}-len{length}"
        shards = self._shards(name, eval_seed(EVAL_SEED, split), 1, n, length, first_out)
        return self.play(self._episodes(shards[:clips]), np.arange(length))
