"""Readers for public datasets in their published formats, for users who have downloaded them
(nothing is downloaded here). ``data.path`` is a folder of ``.npz`` files, one episode each; files
are taken in sorted name order, the last ``eval_episodes`` are held out for evaluation and the
first ``episodes`` of the rest are used for training. Episodes are cut to a common length
(``episode_len``, default the shortest file). A missing folder, a folder without ``.npz`` files or
a malformed file is a :class:`~rad_bench.data.DataError` naming the path, the expected keys and the
fix. Loading a suite already checks the folder and reads each file's array headers (cheap: no
frame is decompressed), so a truncated file or one too short for ``train.clip_len`` or the rollout
is reported before any work; a file corrupt inside (zip CRC) is reported when it is read.

- ``teco_npz``: TECO's DMLab and Minecraft episodes (Yan et al. 2023): ``video`` (T, H, W, 3) uint8
  and ``actions`` (T,) int, ``actions[t]`` taken as the action of frame ``t`` as stored. These
  files hold **no pose**, so there is no ground-truth place: a frame's place id is its index in
  the recorded episode. In the ``retrieval`` task (the context played back in reverse, as for
  ``memory_maze``) a frame shown again is the same recorded frame and is tagged ``in_window`` or
  ``revisit`` correctly; in the ``reasoning`` task (plain continuation) every generated frame is
  tagged ``novel``, so revisit columns stay empty. The action vector is the signed one-hot of the
  ``num_actions`` actions (no place code).
- ``memory_maze_npz``: the Memory Maze offline dataset (Pasukonis et al. 2022): ``image``
  (T, 64, 64, 3) uint8, ``action`` (T, 6) one-hot (all zeros for the first step: the action that
  led into each image), ``agent_pos`` (T, 2), ``agent_dir`` (T, 2). Places, place codes, action
  vectors and the retrieval / reasoning tasks are those of the ``memory_maze`` dataset.
"""

from __future__ import annotations

import zipfile
from abc import abstractmethod
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import Field, model_validator
from torch import Tensor

from rad_bench.data import DataConfig, DataError, DataNotFoundError, Demand, EvalSet, check_episodes
from rad_bench.data.cache import Arrays, EpisodeDataset, Episodes, ShardError, area_resize, bounce, from_npz, onehot
from rad_bench.data.memory_maze import ACTIONS, place_ids
from rad_bench.registry import register_dataset

FIX = "re-download it, or move it out of data.path"


def expected(keys: dict[str, str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in keys.items())


def npz_files(path: str, keys: dict[str, str]) -> list[Path]:
    """The ``.npz`` files of ``data.path`` in name order."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise DataNotFoundError(
            f"{folder}: no such folder (data.path: a folder of downloaded .npz episodes with {expected(keys)})"
        )
    files = sorted(folder.glob("*.npz"))
    if not files:
        raise DataNotFoundError(
            f"{folder}: no .npz files (data.path: a folder of downloaded episodes with {expected(keys)})"
        )
    return files


def stored_frames(f: Path, key: str) -> int:
    """Length of array ``key`` of an ``.npz`` file from its header alone (nothing is decompressed
    past it), so a whole dataset is checked in milliseconds per file."""
    try:
        with zipfile.ZipFile(f) as z, z.open(f"{key}.npy") as m:
            major, _ = np.lib.format.read_magic(m)
            header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            shape = header(m)[0]
    except KeyError:
        raise DataError(f"{f}: no array '{key}'; {FIX}") from None
    except Exception as e:  # noqa: BLE001  a damaged header fails in many ways (zlib, tokenize, ...)
        raise DataError(f"{f}: unreadable .npz, truncated or corrupt ({type(e).__name__}: {e}); {FIX}") from None
    return int(shape[0]) if shape else 0


class ReaderConfig(DataConfig):
    KEYS: ClassVar[dict[str, str]] = {}  # array -> expected layout; the first holds the frames

    path: str = Field(description="folder of .npz episodes")
    frame_size: int | None = Field(None, ge=8, description="side in pixels; default: as stored (area-averaged)")
    episodes: int | None = Field(None, ge=1, description="training episodes to load; default: all")
    eval_episodes: int = Field(16, ge=1, description="held-out episodes (the last files) for evaluation")
    episode_len: int | None = Field(None, ge=2, description="frames kept per episode; default: the shortest file")
    task: Literal["retrieval", "reasoning"] = "retrieval"
    retrace_prob: float | None = Field(None, ge=0, le=1, description="default: 0.5 for retrieval, 0 for reasoning")

    @model_validator(mode="after")
    def _retrace(self) -> ReaderConfig:
        if self.retrace_prob is None:
            self.retrace_prob = 0.5 if self.task == "retrieval" else 0.0
        return self

    def no_split(self, split: str) -> str:
        return (
            f"rollout.split: {split}: data.name reads recorded files ({self.path}), which hold only training "
            "and test episodes; choose settings on a generated dataset, or on held-out files as their own data.path"
        )

    def split(self) -> tuple[list[Path], list[Path]]:
        """(training files, evaluation files) of ``data.path``."""
        files = npz_files(self.path, self.KEYS)
        if len(files) <= self.eval_episodes:
            raise DataError(
                f"{self.path}: {len(files)} .npz files, but data.eval_episodes={self.eval_episodes} are held out "
                "for evaluation and at least one is needed for training; lower data.eval_episodes or add files"
            )
        return files[: -self.eval_episodes][: self.episodes], files[-self.eval_episodes :]

    def check(self, need: Demand) -> None:
        if need.split != "test":
            raise DataError(self.no_split(need.split))
        retrieval = self.task == "retrieval"
        check_episodes(need, episode_len=self.episode_len, eval_episodes=self.eval_episodes, retrieval=retrieval)
        train, evals = self.split()
        key = next(iter(self.KEYS))
        lengths = {f: stored_frames(f, key) for f in train}
        shortest = min(lengths, key=lengths.__getitem__)
        wanted = self.episode_len or need.clip_len
        if lengths[shortest] < wanted:
            field = "data.episode_len" if self.episode_len else "train.clip_len"
            raise DataError(f"{shortest}: {lengths[shortest]} frames, fewer than {field} ({wanted}); lower {field}")
        length = need.context if retrieval else need.context + need.horizon
        for f in evals[: need.clips]:
            if (n := stored_frames(f, key)) < length:
                fields = "rollout.context" if retrieval else "rollout.context + rollout.horizon"
                raise DataError(
                    f"{f}: {n} frames, fewer than {fields} ({length}) of the {self.task} task; lower {fields}"
                )


class NpzEpisodes(EpisodeDataset):
    """Shared reading, splitting and evaluation; a subclass says how one file becomes an episode."""

    KEYS: dict[str, str] = {}  # the config's KEYS, for error messages
    cfg: ReaderConfig

    def __init__(self, cfg: ReaderConfig, seed: int = 0) -> None:
        self.cfg = cfg
        self.retrace_prob = float(cfg.retrace_prob or 0.0)
        train, self.eval_files = cfg.split()
        self.use(self.load(train, prepare=True))

    def expected(self) -> str:
        return expected(self.KEYS)

    def read(self, f: Path) -> Arrays:
        try:
            arrays = from_npz(f.read_bytes(), tuple(self.KEYS))
        except FileNotFoundError:
            raise DataNotFoundError(f"{f}: file vanished while reading data.path") from None
        except (OSError, ShardError) as e:
            raise DataError(f"{f}: {e}; expected {self.expected()}; {FIX}") from None
        self.check(f, arrays)
        return arrays

    def check(self, f: Path, a: Arrays) -> None:
        """Shapes and dtypes of one file; raise DataError naming it."""

    def prepare(self, arrays: list[Arrays]) -> None:
        """Called with the training files' arrays before any episode is built."""

    @abstractmethod
    def episode(self, f: Path, a: Arrays, length: int) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """(frames uint8 (T, 3, s, s), motion (T, m), places (T,), codes (T,) or None) of one file."""

    def frames_of(self, video: np.ndarray) -> torch.Tensor:
        return area_resize(video, self.cfg.frame_size or int(video.shape[1]))

    def load(self, files: list[Path], length: int | None = None, prepare: bool = False) -> Episodes:
        """Episodes of ``files`` cut to ``length`` frames (default: ``episode_len`` or the shortest)."""
        arrays = [self.read(f) for f in files]
        lengths = [len(a[next(iter(self.KEYS))]) for a in arrays]  # the first key holds the frames
        length = length or self.cfg.episode_len or min(lengths)
        if min(lengths) < length:
            raise DataError(f"{files[lengths.index(min(lengths))]}: {min(lengths)} frames, fewer than {length} needed")
        if prepare:
            self.prepare(arrays)
        parts = [self.episode(f, a, length) for f, a in zip(files, arrays)]
        codes = torch.stack([p[3] for p in parts]) if parts[0][3] is not None else None
        return Episodes(*(torch.stack([p[i] for p in parts]) for i in range(3)), codes=codes)

    def eval_set(self, clips: int, context: int, horizon: int, split: str = "test") -> EvalSet:
        if split != "test":
            raise DataError(self.cfg.no_split(split))
        need = Demand(2, context, horizon, clips)
        check_episodes(need, eval_episodes=len(self.eval_files), retrieval=self.cfg.task == "retrieval")
        if self.cfg.task == "retrieval":
            eps, idx = self.load(self.eval_files[:clips], context), bounce(context + horizon, context - 1)
        else:
            eps, idx = self.load(self.eval_files[:clips], context + horizon), np.arange(context + horizon)
        return self.play(eps, idx)


def _video_ok(v: np.ndarray) -> bool:
    return v.ndim == 4 and v.shape[-1] == 3 and v.dtype == np.uint8 and v.shape[1] == v.shape[2]


class TecoConfig(ReaderConfig):
    KEYS = {"video": "(T, H, W, 3) uint8", "actions": "(T,) int"}

    num_actions: int | None = Field(None, ge=1, description="size of the action one-hot; default: max id + 1")


@register_dataset("teco_npz")
class TecoNpz(NpzEpisodes):
    Config = TecoConfig
    KEYS = TecoConfig.KEYS
    cfg: TecoConfig

    def __init__(self, cfg: TecoConfig, seed: int = 0) -> None:
        self.num_actions = cfg.num_actions
        super().__init__(cfg, seed)

    def check(self, f: Path, a: Arrays) -> None:
        v, act = a["video"], a["actions"]
        if not _video_ok(v):
            raise DataError(f"{f}: 'video' is {v.dtype} {v.shape}; expected {self.expected()}")
        if act.ndim != 1 or len(act) != len(v) or not np.issubdtype(act.dtype, np.integer) or act.min() < 0:
            raise DataError(
                f"{f}: 'actions' is {act.dtype} {act.shape} (min {act.min() if act.size else None}) for {len(v)} "
                f"frames; expected {self.expected()} with ids >= 0"
            )

    def prepare(self, arrays: list[Arrays]) -> None:
        if self.num_actions is None:
            self.num_actions = max(int(a["actions"].max()) + 1 for a in arrays)

    def episode(self, f: Path, a: Arrays, length: int) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        assert self.num_actions is not None
        act = a["actions"][:length].astype(np.int64)
        if act.max() >= self.num_actions:
            raise DataError(f"{f}: action id {act.max()} >= num_actions {self.num_actions}; set data.num_actions")
        motion = torch.from_numpy(onehot(act, self.num_actions))
        return self.frames_of(a["video"][:length]), motion, torch.arange(length), None


class MemoryMazeNpzConfig(ReaderConfig):
    KEYS = {"image": "(T, 64, 64, 3) uint8", "action": "(T, 6) one-hot", "agent_pos": "(T, 2)", "agent_dir": "(T, 2)"}

    maze: int = Field(9, ge=2, description="maze side in cells (9 or 15 for the offline dataset)")
    action: Literal["move", "pose", "move+pose"] = "move+pose"


@register_dataset("memory_maze_npz")
class MemoryMazeNpz(NpzEpisodes):
    Config = MemoryMazeNpzConfig
    KEYS = MemoryMazeNpzConfig.KEYS
    cfg: MemoryMazeNpzConfig

    def __init__(self, cfg: MemoryMazeNpzConfig, seed: int = 0) -> None:
        self.code_dim = 0 if cfg.action == "move" else cfg.maze**2 * 4
        super().__init__(cfg, seed)

    def check(self, f: Path, a: Arrays) -> None:
        n = len(a["image"])
        if not _video_ok(a["image"]):
            raise DataError(f"{f}: 'image' is {a['image'].dtype} {a['image'].shape}; expected {self.expected()}")
        for k, shape in (("action", (n, len(ACTIONS))), ("agent_pos", (n, 2)), ("agent_dir", (n, 2))):
            if a[k].shape != shape:
                raise DataError(f"{f}: '{k}' has shape {a[k].shape}, expected {shape}; expected {self.expected()}")
        pos = a["agent_pos"]
        if pos.min() < 0 or pos.max() >= self.cfg.maze:
            raise DataError(
                f"{f}: agent_pos spans {pos.min():.2f}..{pos.max():.2f}, outside a {self.cfg.maze}x"
                f"{self.cfg.maze} maze; set data.maze"
            )

    def episode(self, f: Path, a: Arrays, length: int) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        act = a["action"][:length]
        index = np.where(act.max(axis=1) > 0, act.argmax(axis=1), -1)  # all-zero row: no action
        motion = torch.from_numpy(onehot(index, len(ACTIONS)))
        if self.cfg.action == "pose":
            motion = motion[..., :0]
        places = torch.from_numpy(place_ids(a["agent_pos"][:length], a["agent_dir"][:length], self.cfg.maze))
        return self.frames_of(a["image"][:length]), motion, places, places
