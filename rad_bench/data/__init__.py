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

from rad_bench.dataconfig import (  # noqa: F401  (re-exported: a dataset module imports these from here)
    DataConfig,
    DataError,
    DataNotFoundError,
    Demand,
    MissingDependencyError,
    check_episodes,
)
from rad_bench.registry import import_submodules

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
