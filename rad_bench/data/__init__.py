"""Datasets: each module registers a class with ``@register_dataset(name)``.

A dataset class has a pydantic ``Config`` (the suite's ``data:`` keys, validated before any work)
and implements the :class:`Dataset` interface: an endless stream of training clips and a fixed
evaluation set with ground-truth places for revisit tagging.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from rad_bench.registry import import_submodules
from rad_bench.schema import Strict


class DataError(ValueError):
    """Data cannot be used: files missing, unreadable or too short for the suite. The message names
    the file or the suite field and says how to fix it."""


class DataNotFoundError(DataError, FileNotFoundError):
    """A data folder or file does not exist."""


class MissingDependencyError(DataError, ImportError):
    """Generating episodes needs an environment that is not installed; the message says what to install."""


@dataclass(frozen=True)
class Demand:
    """What a suite asks of its data, checked at load time (before any work) by
    :meth:`DataConfig.check`."""

    clip_len: int  # train.clip_len
    context: int  # rollout.context
    horizon: int  # rollout.horizon
    clips: int  # rollout.clips
    split: str = "test"  # rollout.split
    batch_size: int = 1  # train.batch_size


SPLITS = ("test", "validation")
VALIDATION_OFFSET = 7_919  # added to a dataset's test seed to draw its validation episodes


def takes_split(cls: type) -> bool:
    """Can this dataset draw validation episodes (its ``eval_set`` has a ``split`` parameter)? One
    written before ``rollout.split`` existed takes three arguments and serves the test episodes only."""
    return "split" in inspect.signature(cls.eval_set).parameters


def eval_seed(test_seed: int, split: str) -> int:
    """The fixed seed of a split's evaluation episodes. ``test`` (what leaderboards report) is drawn
    at ``test_seed``; ``validation`` (for choosing settings such as learning rates, never reported)
    is drawn at a seed of its own, independently of the test episodes and of any training seed."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return test_seed if split == "test" else test_seed + VALIDATION_OFFSET


class DataConfig(Strict):
    """Base for dataset configs: unknown keys, infinities and yes/no values for numbers are errors."""

    def check(self, need: Demand) -> None:
        """Raise :class:`DataError` naming the ``data.`` and suite fields when this data cannot
        serve ``need``. Cheap: nothing is generated or loaded (a reader may read file headers)."""

    def footprint(self, need: Demand) -> dict[str, float]:
        """Lower bounds (bytes) of what this data holds in memory, by the ``data.`` fields that scale
        them (episodes generated up front, the world they are cut from, the action vectors of a batch),
        for the memory check before any work (:func:`rad_bench.limits.check_memory`). None by default."""
        return {}

    def eval_only(self) -> set[str]:
        """The fields that shape only the evaluation episodes, never the training data: cells of a
        sweep that differ in these alone share one training (:mod:`rad_bench.reuse`). None by default."""
        return set()


def check_episodes(
    need: Demand, *, episode_len: int | None = None, eval_episodes: int | None = None, retrieval: bool = False
) -> None:
    """The checks shared by episode datasets; ``None`` means not known before the data is read."""
    if episode_len is not None and need.clip_len > episode_len:
        raise DataError(
            f"train.clip_len ({need.clip_len}) > data.episode_len ({episode_len}): training clips are cut "
            "from one episode; lower train.clip_len or raise data.episode_len"
        )
    if eval_episodes is not None and need.clips > eval_episodes:
        raise DataError(
            f"rollout.clips ({need.clips}) > data.eval_episodes ({eval_episodes}): lower rollout.clips or "
            "raise data.eval_episodes"
        )
    if retrieval and need.context < 2:
        raise DataError(
            f"rollout.context ({need.context}): the retrieval task plays the context back and needs at "
            "least 2 frames; raise rollout.context or set data.task: reasoning"
        )


@dataclass
class EvalSet:
    """``frames: (N, T, c, H, W)`` in [-1, 1], ``actions: (N, T, a)``, ``places: (N, T)`` int ids of
    the ground-truth place seen by each frame (equal id = same view), used for revisit tags.
    ``scored: (N, T)`` bool, optional: the generated frames the leaderboard scores (recall: the first
    ask of each slot, :func:`rad_bench.data.recall.first_asks`); ``None`` scores every frame. Rows
    carry it as ``scored`` (1/0), so the frames left out stay in metrics.csv."""

    frames: Tensor
    actions: Tensor
    places: Tensor
    scored: Tensor | None = None


class Dataset(ABC):
    Config: ClassVar[type[DataConfig]] = DataConfig

    channels: int
    frame_size: int
    action_dim: int

    @abstractmethod
    def sample(self, batch: int, clip_len: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
        """A batch of training clips ``(frames (b, t, c, H, W), actions (b, t, a))``."""

    # whether :meth:`sample_with_targets` marks target frames (``train.loss_frames: targets``)
    has_targets: ClassVar[bool] = False

    def sample_with_targets(self, batch: int, clip_len: int, g: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        """:meth:`sample` and a ``(b, t)`` bool mask of the frames that carry the loss under
        ``train.loss_frames: targets``; a dataset that declares targets sets :attr:`has_targets`."""
        frames, actions = self.sample(batch, clip_len, g)
        return frames, actions, torch.ones(frames.shape[:2], dtype=torch.bool)

    @abstractmethod
    def eval_set(self, clips: int, context: int, horizon: int, split: str = "test") -> EvalSet:
        """Fixed evaluation episodes of ``context + horizon`` frames (identical for every block/seed):
        the test episodes, or with ``split="validation"`` a held-out set drawn apart (:func:`eval_seed`)."""


import_submodules(__name__)  # every dataset module registers itself: a new dataset is one new file here
