"""Suite kinds: one loader for every suite file. A file's ``kind:`` (``video``, the default, or ``mqar``, the
token-level calibration) picks the typed config it is validated into; run folders (:mod:`rad_bench.rundir`) store
and compare either kind's resolved form the same way, and the CLI runs and reports a suite by its kind, never by
reading the file a second time.

Torch-free: validating a suite loads no model code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rad_bench.config import Suite, migrate, resolved_dict, validate
from rad_bench.mqar.config import MQARConfig, validate_mqar
from rad_bench.suitefile import SuiteError, apply_overrides, read_with_includes

AnySuite = Suite | MQARConfig


@dataclass(frozen=True)
class Kind:
    """How a suite of one kind is validated (from the file's mapping, ``where`` naming it in errors) and written
    back in resolved form (what ``suite.resolved.yaml`` holds and ``rad-bench validate`` prints)."""

    name: str
    validate: Callable[[dict[str, Any], str], Any]
    resolved: Callable[[Any], dict[str, Any]]


def _video(raw: dict[str, Any], where: str) -> Suite:
    return validate({k: v for k, v in raw.items() if k != "kind"}, where)  # the default kind is not written


KINDS: dict[str, Kind] = {
    "video": Kind("video", _video, resolved_dict),
    "mqar": Kind("mqar", validate_mqar, lambda s: s.model_dump(mode="json", exclude={"progress"})),  # display only
}


def kind_of(raw: dict[str, Any], where: str) -> Kind:
    """The kind a suite mapping names (``video`` when it names none); an unknown one is an error with the choices."""
    name = raw.get("kind", "video")
    if not isinstance(name, str) or name not in KINDS:
        raise SuiteError(
            f"{where}: field 'kind': {name!r} is not a suite kind; use one of {', '.join(KINDS)} "
            "(or leave it out for a video suite)"
        )
    return KINDS[name]


def kind_of_suite(suite: AnySuite) -> Kind:
    return KINDS["mqar" if isinstance(suite, MQARConfig) else "video"]


def load(path: str | Path, overrides: list[str] | None = None) -> tuple[Kind, AnySuite]:
    """Read a suite file (includes, then ``key=value`` overrides) once and validate it as its kind."""
    where = str(path)
    raw = apply_overrides(read_with_includes(Path(path)), overrides or [])
    kind = kind_of(raw, where)
    return kind, kind.validate(raw, where)


def resolved_yaml(suite: AnySuite, limited: bool) -> str:
    """A run folder's ``suite.resolved.yaml``: the suite in resolved form and whether training was capped."""
    d = kind_of_suite(suite).resolved(suite)
    d["limited"] = limited
    return yaml.safe_dump(d, sort_keys=False)


def same_suite(stored: str, text: str) -> bool:
    """Does ``stored`` (a run's suite.resolved.yaml) name the suite that ``text`` does: the same text, or, written
    by an earlier rad-bench, the same suite once read in today's schema (:func:`rad_bench.config.migrate`, then
    validated as its kind: e.g. ``data:`` as written then, with its defaults now)?"""
    if stored == text:
        return True
    try:
        raw = yaml.safe_load(stored)
        limited = bool(raw.pop("limited", False))
        kind = kind_of(raw, "suite.resolved.yaml")
        return resolved_yaml(kind.validate(migrate(raw), "suite.resolved.yaml"), limited) == text
    except (SuiteError, ValueError, TypeError, AttributeError, yaml.YAMLError):
        return False


def stored_kind(run_dir: Path) -> str:
    """The kind of the suite a run folder holds (``video`` when its suite.resolved.yaml is absent or names none)."""
    f = run_dir / "suite.resolved.yaml"
    try:
        raw = yaml.safe_load(f.read_text()) if f.is_file() else {}
    except (yaml.YAMLError, UnicodeDecodeError):
        return "video"  # the video report names what is wrong with the folder
    return str(raw.get("kind", "video")) if isinstance(raw, dict) else "video"
