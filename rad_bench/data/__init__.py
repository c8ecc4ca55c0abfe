"""Datasets: each module registers a class with ``@register_dataset(name)``.

A dataset class has a pydantic ``Config`` (the suite's ``data:`` keys, validated before any work)
and implements the :class:`Dataset` interface: an endless stream of training clips and a fixed
evaluation set with ground-truth places for revisit tagging.
"""

from __future__ import annotations

import importlib
import pkgutil
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import torch
from pydantic import BaseModel, ConfigDict
from torch import Tensor


class DataConfig(BaseModel):
    """Base for dataset configs: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class EvalSet:
    """``frames: (N, T, c, H, W)`` in [-1, 1], ``actions: (N, T, a)``, ``places: (N, T)`` int ids of
    the ground-truth place seen by each frame (equal id = same view), used for revisit tags."""

    frames: Tensor
    actions: Tensor
    places: Tensor


class Dataset(ABC):
    Config: ClassVar[type[DataConfig]] = DataConfig

    channels: int
    frame_size: int
    action_dim: int

    @abstractmethod
    def sample(self, batch: int, clip_len: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
        """A batch of training clips ``(frames (b, t, c, H, W), actions (b, t, a))``."""

    @abstractmethod
    def eval_set(self, clips: int, context: int, horizon: int) -> EvalSet:
        """Fixed evaluation episodes of ``context + horizon`` frames (identical for every block/seed)."""


def _discover() -> None:
    for mod in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{mod.name}")


_discover()
