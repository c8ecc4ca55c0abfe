"""Model size presets (``model.preset`` in a suite): plain numbers, importable without torch, so
validating a suite never loads the model code."""

from __future__ import annotations

PRESETS: dict[str, dict[str, float | int]] = {
    "tiny": {"dim": 64, "depth": 3, "heads": 4},  # tests
    "small": {"dim": 96, "depth": 4, "heads": 4},  # CPU smoke
    "dit_s": {"dim": 384, "depth": 12, "heads": 6},  # one GPU
    "dit_b": {"dim": 768, "depth": 12, "heads": 12},
}
