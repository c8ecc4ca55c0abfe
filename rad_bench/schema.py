"""The base every validated part of a suite builds on (suite sections, token suites, dataset configs): a
strict pydantic model, and the rule for names that become folder and file names. Torch-free, and below
every layer that validates.
"""

from __future__ import annotations

import re
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

# Suite names, block labels and sweep values become folder and file names (results/<name>/...,
# cells/<label>[<sweep>]-s<seed>/): a safe character set keeps every written path inside its run folder.
SAFE_HINT = "letters, digits and _ . + - (no '/', no '..', at most 64 characters)"


def safe_name(v: Any) -> Any:
    """``v`` if it is usable as one path component, else a ValueError that says what is allowed."""
    if isinstance(v, str) and (not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}", v) or ".." in v):
        raise ValueError(f"{v!r} becomes a folder name; use {SAFE_HINT}")
    return v


def _numeric(annotation: Any) -> bool:
    """Whether a field takes a number (``int``, ``float``, or either or None) and not a yes/no."""
    kinds = set(get_args(annotation)) or {annotation}
    return bool(kinds & {int, float}) and bool not in kinds


class Strict(BaseModel):
    """Base of every section of a suite (video and token) and of every dataset config: an unknown key is an
    error, a number must be finite (``.inf`` and ``.nan`` are refused) and a yes/no is no number (pydantic
    would read ``batch_size: true`` as 1)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_yes_no_numbers(cls, v: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        if isinstance(v, bool) and field is not None and _numeric(field.annotation):
            raise ValueError(f"{str(v).lower()} is a yes/no value and this field takes a number; write the number")
        return v
