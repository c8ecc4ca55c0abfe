"""Name -> object registries for memory blocks, datasets and metrics.

A name is declared once, where the object is defined, with a decorator::

    @register_block("mamba2")
    class Mamba2Block(MemoryBlock): ...

Duplicate names raise (a silent overwrite would change a leaderboard). Unknown names raise
:class:`UnknownNameError` listing the closest names, then everything available.

Discovery is lazy and by folder: the first lookup in a registry imports every module of its package
(``blocks/``, ``rad_bench/data/``, ``rad_bench/metrics/specs/``), so a new block, dataset or metric is
one new file there and no edit elsewhere. This is the only place ``rad_bench`` reaches ``blocks/``.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """Raised for a name that is not registered; the message suggests the closest names."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


def closest(name: str, choices: list[str], n: int = 3) -> list[str]:
    """The registered names most similar to ``name`` (difflib ratio), best first."""
    return difflib.get_close_matches(name, choices, n=n, cutoff=0.5)


def unknown_name_message(kind: str, name: str, choices: list[str]) -> str:
    near = closest(name, choices)
    hint = f" Did you mean: {', '.join(near)}?" if near else ""
    return f"unknown {kind} '{name}'.{hint} Available: {', '.join(sorted(choices))}."


@dataclass
class Registry(Generic[T]):
    """A flat name -> object table with per-entry metadata."""

    kind: str
    discover: Callable[[], None] | None = None
    _entries: dict[str, T] = field(default_factory=dict)
    _discovered: bool = False

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._entries:
                raise ValueError(
                    f"{self.kind} '{name}' is registered twice ({self._entries[name]!r} and {obj!r}); "
                    "rename one of them."
                )
            self._entries[name] = obj
            return obj

        return deco

    def _ensure(self) -> None:
        if not self._discovered and self.discover is not None:
            self._discovered = True
            self.discover()

    def get(self, name: str) -> T:
        self._ensure()
        if name not in self._entries:
            raise UnknownNameError(unknown_name_message(self.kind, name, list(self._entries)))
        return self._entries[name]

    def names(self) -> list[str]:
        self._ensure()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._ensure()
        return name in self._entries


def import_submodules(package: str) -> list[str]:
    """Import every module of ``package`` (on its ``__path__``) whose name does not start with ``_``;
    each registers what it defines. Returns their names. Modules imported before are not run again."""
    pkg = importlib.import_module(package)
    names = [m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_")]
    for name in names:
        importlib.import_module(f"{package}.{name}")
    return names


def _import_blocks() -> None:
    importlib.import_module("blocks")


def _import_datasets() -> None:
    importlib.import_module("rad_bench.data")


def _import_metrics() -> None:
    importlib.import_module("rad_bench.metrics")


BLOCKS: Registry[Any] = Registry("block", discover=_import_blocks)
DATASETS: Registry[Any] = Registry("dataset", discover=_import_datasets)
METRICS: Registry[Any] = Registry("metric", discover=_import_metrics)


def register_block(name: str) -> Callable[[T], T]:
    """Class decorator: make a :class:`~rad_bench.block.MemoryBlock` available to suites by name."""

    def deco(cls: T) -> T:
        cls.name = name  # type: ignore[attr-defined]
        return BLOCKS.register(name)(cls)

    return deco


def register_dataset(name: str) -> Callable[[T], T]:
    return DATASETS.register(name)


def register_metric(name: str) -> Callable[[T], T]:
    """Register a metric spec (see :class:`rad_bench.metrics.MetricSpec`: direction and scope)."""
    return METRICS.register(name)


def get_block(name: str) -> Any:
    return BLOCKS.get(name)


def list_blocks() -> list[str]:
    return BLOCKS.names()
