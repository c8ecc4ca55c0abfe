"""What the datasets recorded from a real environment by a scripted agent (``memory_maze``,
``crafter``) share: the config fields and checks of their episodes, and the cached shards they are
recorded into (``<cache>/<dataset>/<config hash>/<split>/``, :mod:`rad_bench.data.cache`).

A subclass names its cache folder (``dataset``), the arrays every shard must hold (``arrays``) and,
in its config's :meth:`RecordedConfig.generation`, what the content of an episode depends on: that
mapping's hash is the cache key, so it must only change when the recordings do.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar, Literal

from pydantic import Field

from rad_bench.data import DataConfig, Demand, check_episodes
from rad_bench.data.cache import Arrays, EpisodeDataset, ShardStore, cache_root, config_hash


def shard_prefix(split: str) -> str:
    """Cache folder prefix of a split's evaluation shards (the test shards keep their old name, ``eval``)."""
    return "eval" if split == "test" else "val"


class RecordedConfig(DataConfig):
    """The ``data:`` keys every recorded dataset has; subclasses add their own and may set defaults."""

    episode_len: int | None = Field(None, ge=2, description="frames per training episode")
    episodes: int | None = Field(None, ge=1, description="training episodes")
    eval_episodes: int | None = Field(None, ge=1, description="evaluation episodes; default: rollout.clips")
    task: Literal["retrieval", "reasoning"] = "retrieval"
    action: Literal["move", "pose", "move+pose"] = "move+pose"
    data_seed: int = Field(0, ge=0, description="seed of the training episodes")
    workers: int = Field(1, ge=1, description="processes generating episodes")
    cache_dir: str | None = Field(None, description="default: $RAD_BENCH_CACHE or ~/.cache/rad_bench")

    def footprint(self, need: Demand) -> dict[str, float]:
        side = getattr(self, "frame_size", None) or 64  # as rendered where the config leaves it to the files
        length = self.episode_len or need.clip_len
        return {"data.episodes x data.episode_len (frames in memory)": 3.0 * side**2 * (self.episodes or 1) * length}

    def check(self, need: Demand) -> None:
        # evaluation episodes are recorded at the length the rollout needs: only clips are bounded
        check_episodes(
            need, episode_len=self.episode_len, eval_episodes=self.eval_episodes, retrieval=self.task == "retrieval"
        )

    @abstractmethod
    def generation(self) -> dict[str, Any]:
        """What the content of a training episode depends on (the cache key); each dataset says."""


class RecordedEpisodes(EpisodeDataset):
    """Episodes recorded into checksummed shards, one folder per generation config."""

    dataset: ClassVar[str]  # the cache folder and the manifest's ``dataset``
    arrays: ClassVar[tuple[str, ...]]  # what every shard must hold
    cfg: RecordedConfig

    def __init__(self, cfg: RecordedConfig) -> None:
        self.cfg = cfg
        self.folder = cache_root(cfg.cache_dir) / self.dataset / config_hash(cfg.generation())

    def load_shards(self, split: str, seed: int, n: int, length: int, make: Callable[[int], Arrays]) -> list[Arrays]:
        """The first ``n`` shards of ``split``; the missing ones are recorded by ``make(i)`` (``workers``)."""
        gen = self.cfg.generation()
        meta = {"dataset": self.dataset, "config": gen, "seed": seed, "split": split, "length": length}
        store = ShardStore(self.folder / split, meta, required=self.arrays)
        return store.load(n, make, workers=self.cfg.workers, desc=f"{self.dataset} {split}")

    def eval_count(self, clips: int, context: int) -> int:
        """Evaluation episodes to record (``data.eval_episodes``, default ``clips``), after checking that
        they cover ``clips`` and that the retrieval task has a context to play back."""
        n = self.cfg.eval_episodes or clips
        if clips > n:
            raise ValueError(f"rollout.clips ({clips}) exceeds data.eval_episodes ({n})")
        if self.cfg.task == "retrieval" and context < 2:
            raise ValueError(f"the retrieval task needs a context of at least 2 frames, got {context}")
        return n
