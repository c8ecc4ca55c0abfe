"""Block entries of a suite (``blocks[i]``): a registered name, a label that is no reference row, and
``kwargs`` the block's constructor takes, each value of the annotated type. Torch-free until a block
class is looked up (the registry imports its module then)."""

from __future__ import annotations

import inspect
import typing
from typing import Any, Protocol

from pydantic import TypeAdapter, ValidationError

from rad_bench.registry import BLOCKS, unknown_name_message
from rad_bench.results import REFERENCE_NAMES
from rad_bench.suitefile import SuiteError


class BlockSpec(Protocol):
    """What is checked of a ``blocks[i]`` entry (:class:`rad_bench.config.BlockSpec`)."""

    name: str
    kwargs: dict[str, Any]

    @property
    def display(self) -> str: ...


SET_BY_MODEL = ("self", "dim", "impl")  # block constructor arguments the model sets, never the suite


def check_block(b: BlockSpec, i: int, where: str) -> None:
    """One ``blocks[i]`` entry: a registered name, a label that is no reference row, known kwargs."""
    if b.name not in BLOCKS:
        raise SuiteError(f"{where}: field 'blocks[{i}]': {unknown_name_message('block', b.name, BLOCKS.names())}")
    if b.display in REFERENCE_NAMES:
        raise SuiteError(
            f"{where}: field 'blocks[{i}]': '{b.display}' is the name of a reference row "
            f"({', '.join(REFERENCE_NAMES)}), whose rows would mix with this block's; pick another label"
        )
    init = BLOCKS.get(b.name).__init__
    params = inspect.signature(init).parameters
    for k in b.kwargs:
        if k not in params or k in SET_BY_MODEL:
            valid = [p for p in params if p not in SET_BY_MODEL]
            raise SuiteError(
                f"{where}: field 'blocks[{i}].kwargs.{k}': block '{b.name}' takes no argument '{k}'. "
                f"Valid: {', '.join(valid)}"
            )
    _check_kwarg_types(b, init, f"{where}: field 'blocks[{i}].kwargs")


def _check_kwarg_types(b: BlockSpec, init: Any, where: str) -> None:
    """Each kwargs value against the block constructor's annotation, strictly (``"4"`` is no int, ``true``
    no number); values the type allows but the block refuses (``mini_batch: 0``) fail when it is built."""
    try:
        hints = typing.get_type_hints(init)
    except Exception:  # an annotation that does not resolve: the constructor's own checks remain
        return
    for k, v in b.kwargs.items():
        if k not in hints:
            continue
        try:
            TypeAdapter(hints[k]).validate_python(v, strict=True)
        except ValidationError:
            want = getattr(hints[k], "__name__", None) or str(hints[k]).replace("typing.", "")
            raise SuiteError(
                f"{where}.{k}': {v!r} ({type(v).__name__}) is not a valid value for block '{b.name}', which "
                f"takes {want}; write it as one (numbers unquoted)"
            ) from None
