"""``synthetic``: a procedurally generated 2-D world seen through a moving camera crop.

Each episode draws its own world (a smooth colour field with distinct landmarks: discs, squares,
diamonds and rings in vivid colours), so nothing can be memorised across episodes: a model can
only reproduce a revisited view if it remembers it from earlier in the same episode.

The camera sits on a ``grid x grid`` lattice of positions ``step`` pixels apart; each action moves
it one lattice step (or keeps it). Trajectories alternate *explore* (a random walk that prefers
unseen positions) and *retrace* (walk the path back), so places are left and revisited after
more than a window of frames. Evaluation episodes follow the retrieval task of Po et al. (2025):
explore during the context, then retrace the path in reverse during the rollout.

Action vector per frame: one-hot move (stay, up, down, left, right) + the camera position as a
one-hot lattice cell, following Po et al., who condition Memory Maze models on the agent position.
The place id of a frame is its lattice position: two frames with equal ids show the same view.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor

from rad_bench.data import DataConfig, Dataset, Demand, EvalSet, check_episodes, eval_seed
from rad_bench.registry import register_dataset

MOVES = np.array([[0, 0], [0, -1], [0, 1], [-1, 0], [1, 0]])  # stay, up, down, left, right as (dx, dy)
EVAL_SEED = 10_000_019  # evaluation worlds are fixed, independent of the training seed


class SyntheticConfig(DataConfig):
    frame_size: int = Field(32, ge=8, description="view side in pixels")
    grid: int = Field(5, ge=2, description="camera positions per axis")
    step: int = Field(16, ge=1, description="pixels between neighbouring camera positions")
    landmarks: int = Field(24, ge=0, description="shapes per world")
    episodes: int = Field(1000, ge=1, description="training worlds per seed")
    episode_len: int = Field(48, ge=2)
    action: str = Field("move+pose", pattern="^(move|pose|move\\+pose)$")

    @model_validator(mode="after")
    def _check(self) -> SyntheticConfig:
        if self.step > self.frame_size:
            raise ValueError(f"step ({self.step}) must not exceed frame_size ({self.frame_size}): views would not tile")
        return self

    def footprint(self, need: Demand) -> dict[str, float]:
        side = self.frame_size + (self.grid - 1) * self.step
        return {
            "data.episodes x world side (frame_size + (grid - 1) x step)^2": 12.0 * self.episodes * side**2,
            "data.episodes x data.episode_len (trajectories)": 24.0 * self.episodes * self.episode_len,
            "data.grid^2 (action width) x train.batch_size x clip_len": 4.0
            * self.grid**2
            * need.batch_size
            * need.clip_len,
        }

    def check(self, need: Demand) -> None:
        # evaluation episodes are drawn at context + horizon frames, whatever episode_len: only
        # training clips are bounded by it
        check_episodes(need, episode_len=self.episode_len)


# --------------------------------------------------------------------------------------------
#                                   Trajectories
# --------------------------------------------------------------------------------------------


def explore(rng: np.random.Generator, pos: np.ndarray, steps: int, grid: int, seen: set) -> list[int]:
    """Random walk of ``steps`` moves (indices into MOVES, never 'stay'), preferring unseen cells."""
    moves = []
    for _ in range(steps):
        options = [m for m in range(1, 5) if ((pos + MOVES[m]) >= 0).all() and ((pos + MOVES[m]) < grid).all()]
        fresh = [m for m in options if tuple(pos + MOVES[m]) not in seen]
        m = int(rng.choice(fresh if fresh and rng.random() < 0.85 else options))
        pos = pos + MOVES[m]
        seen.add(tuple(pos))
        moves.append(m)
    return moves


REVERSE = {0: 0, 1: 2, 2: 1, 3: 4, 4: 3}


def trajectory(
    rng: np.random.Generator, grid: int, length: int, first_explore: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(moves, start): move indices for ``length`` frames (frame 0 has move 'stay') and the start
    position. Explore, retrace, repeat.

    With ``first_explore`` the first segment explores exactly that many moves and is then retraced
    (the retrieval task)."""
    moves = [0]
    pos = start = rng.integers(0, grid, size=2)
    seen = {tuple(pos)}
    while len(moves) < length:
        n_out = first_explore if first_explore is not None else int(rng.integers(3, 3 * grid))
        out = explore(rng, pos, n_out, grid, seen)
        back = [REVERSE[m] for m in reversed(out)]
        if first_explore is None:
            back = back[: int(rng.integers(1, len(back) + 1))]  # return part of the way
        for m in out + back:
            pos = pos + MOVES[m]
        moves += out + back
        first_explore = None
    return np.array(moves[:length]), start


def positions(moves: np.ndarray, start: np.ndarray) -> np.ndarray:
    return start + np.cumsum(MOVES[moves], axis=0)  # (T, 2)


# --------------------------------------------------------------------------------------------
#                                   Worlds
# --------------------------------------------------------------------------------------------


def render_worlds(n: int, side: int, landmarks: int, g: torch.Generator) -> Tensor:
    """``n`` worlds ``(n, 3, side, side)`` in [-1, 1]: smooth colour field + vivid shapes."""
    base = torch.rand(n, 3, 4, 4, generator=g) * 0.8 - 0.9  # dark, low-saturation background
    world = F.interpolate(base, size=(side, side), mode="bicubic", align_corners=True).clamp(-1, 1)
    yy, xx = torch.meshgrid(torch.arange(side).float(), torch.arange(side).float(), indexing="ij")
    for _ in range(landmarks):
        cx, cy = (torch.rand(2, n, 1, 1, generator=g) * side).unbind(0)
        r = 2.5 + torch.rand(n, 1, 1, generator=g) * 4.5
        kind = torch.randint(0, 4, (n, 1, 1), generator=g)
        dx, dy = (xx - cx).abs(), (yy - cy).abs()
        disc, square, diamond = dx**2 + dy**2 <= r**2, torch.maximum(dx, dy) <= r, dx + dy <= r * 1.3
        ring = disc & (dx**2 + dy**2 >= (0.5 * r) ** 2)
        mask = torch.where(kind == 0, disc, torch.where(kind == 1, square, torch.where(kind == 2, diamond, ring)))
        color = torch.rand(n, 3, 1, 1, generator=g) * 2 - 1
        color[torch.arange(n), torch.randint(0, 3, (n,), generator=g)] = 1.0  # one saturated channel
        world = torch.where(mask[:, None], color, world)
    return world


def crop_views(worlds: Tensor, pos: Tensor, step: int, size: int) -> Tensor:
    """``worlds (n, 3, S, S)``, lattice positions ``pos (n, t, 2)`` -> views ``(n, t, 3, size, size)``."""
    n, t = pos.shape[:2]
    off = torch.arange(size)
    ys = (pos[..., 1, None] * step + off)[:, :, :, None].expand(n, t, size, size)
    xs = (pos[..., 0, None] * step + off)[:, :, None, :].expand(n, t, size, size)
    idx = torch.arange(n)[:, None, None, None]
    return worlds.permute(0, 2, 3, 1)[idx, ys, xs].permute(0, 1, 4, 2, 3)


# --------------------------------------------------------------------------------------------
#                                   Dataset
# --------------------------------------------------------------------------------------------


@register_dataset("synthetic")
class Synthetic(Dataset):
    Config = SyntheticConfig
    channels = 3

    def __init__(self, cfg: SyntheticConfig, seed: int = 0) -> None:
        self.cfg = cfg
        self.frame_size = cfg.frame_size
        self.action_dim = {"move": 5, "pose": cfg.grid**2, "move+pose": 5 + cfg.grid**2}[cfg.action]
        self.side = cfg.frame_size + (cfg.grid - 1) * cfg.step
        self.worlds, self.moves, self.pos = self._episodes(cfg.episodes, cfg.episode_len, seed, None)

    def _episodes(self, n: int, length: int, seed: int, first_explore: int | None) -> tuple[Tensor, Tensor, Tensor]:
        rng = np.random.default_rng(seed)
        moves, pos = [], []
        for _ in range(n):
            m, start = trajectory(rng, self.cfg.grid, length, first_explore)
            moves.append(m)
            pos.append(positions(m, start))
        worlds = render_worlds(n, self.side, self.cfg.landmarks, torch.Generator().manual_seed(seed))
        return worlds, torch.from_numpy(np.stack(moves)), torch.from_numpy(np.stack(pos))

    def actions(self, moves: Tensor, pos: Tensor) -> Tensor:
        onehot = F.one_hot(moves, 5).float()
        # the camera position as a one-hot lattice cell: with a linear embedding, equal positions
        # give equal codes and different ones near-orthogonal codes, so attention can key on
        # "same place" directly (a raw (x, y) pair only gives bilinear scores that peak at the edges)
        pose = F.one_hot(pos[..., 0] * self.cfg.grid + pos[..., 1], self.cfg.grid**2).float()
        parts = {"move": [onehot], "pose": [pose], "move+pose": [onehot, pose]}[self.cfg.action]
        return torch.cat(parts, dim=-1)

    def sample(self, batch: int, clip_len: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
        check_episodes(Demand(clip_len, 2, 0, 0), episode_len=self.cfg.episode_len)
        ep = torch.randint(0, len(self.worlds), (batch,), generator=g)
        start = torch.randint(0, self.cfg.episode_len - clip_len + 1, (batch,), generator=g)
        idx = start[:, None] + torch.arange(clip_len)
        moves = self.moves[ep[:, None], idx]
        moves[:, 0] = 0  # the first frame of a clip has no move into it
        pos = self.pos[ep[:, None], idx]
        frames = crop_views(self.worlds[ep], pos, self.cfg.step, self.frame_size)
        return frames, self.actions(moves, pos)

    def eval_set(self, clips: int, context: int, horizon: int, split: str = "test") -> EvalSet:
        # retrieval: explore for the context, then retrace the path in reverse during the rollout
        seed = eval_seed(EVAL_SEED, split)
        worlds, moves, pos = self._episodes(clips, context + horizon, seed, first_explore=context - 1)
        frames = crop_views(worlds, pos, self.cfg.step, self.frame_size)
        places = pos[..., 0] * self.cfg.grid + pos[..., 1]
        return EvalSet(frames=frames, actions=self.actions(moves, pos), places=places)
