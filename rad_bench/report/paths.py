"""Which run folder a ``rad-bench report PATH`` means: a run folder itself, a suite's results folder (its newest
run) or a suite file (its ``name:``, read as plain YAML: the suite is not validated)."""

from __future__ import annotations

from pathlib import Path

from rad_bench.results import METRICS_CSV, ReportError
from rad_bench.schema import safe_name


def suite_name(path: Path, _seen: tuple[Path, ...] = ()) -> str:
    """A suite file's ``name:``, following ``include:``. Plain YAML on purpose: validating the suite
    would import the block registry and with it torch, which the report never needs."""
    import yaml

    path = path.resolve()
    if path in _seen:
        raise ReportError(f"{path}: include cycle: {' -> '.join(str(p) for p in (*_seen, path))}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ReportError(f"{path}: cannot read the suite ({e})") from e
    if not isinstance(raw, dict):
        raise ReportError(f"{path}: a suite must be a mapping of keys")
    if "name" in raw:
        return str(raw["name"])
    if isinstance(raw.get("include"), str):
        return suite_name(path.parent / raw["include"], (*_seen, path))
    raise ReportError(f"{path}: no `name:` here or in an included file; add `name: <suite>`")


def resolve_run_dir(path: Path, results_root: Path = Path("results")) -> Path:
    """A run folder from a run folder, a suite results folder (its newest run by name that has a
    metrics.csv) or a suite YAML (its results folder under ``results_root``)."""
    if path.is_file() and path.suffix in (".yaml", ".yml"):
        name = suite_name(path)
        try:
            safe_name(name)
        except ValueError as e:
            raise ReportError(f"{path}: field 'name': {e}") from None
        if not (results_root / name).is_dir():
            raise ReportError(f"{path}: suite '{name}' has no results in {results_root / name}; run it first")
        path = results_root / name
    if (path / METRICS_CSV).is_file():
        return path
    runs = sorted(d for d in path.iterdir() if (d / METRICS_CSV).is_file()) if path.is_dir() else []
    if not runs:
        raise ReportError(
            f"{path}: no metrics.csv and no run folder under it holding one; pass a run folder "
            "(results/<suite>/<run>), a suite's results folder (results/<suite>/) or a suite YAML"
        )
    return runs[-1]
