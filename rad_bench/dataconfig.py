"""What a dataset's configuration is, apart from the dataset itself (torch-free): the ``data:`` section's
base model, what a suite asks of its data, and the errors a dataset raises. Suite validation
(:mod:`rad_bench.config`) carries a dataset's config without loading the dataset."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field

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


class DataConfig(Strict):
    """Base for dataset configs: unknown keys, infinities and yes/no values for numbers are errors.

    A suite's ``data:`` section is validated once into its dataset's config (``Suite.data``) and carried
    forward as it is: ``name`` is the registered dataset, every other field the dataset's own."""

    name: str = Field("", description="the registered dataset (rad-bench ls datasets)")

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
