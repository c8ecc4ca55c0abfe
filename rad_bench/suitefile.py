"""Reading a suite file into plain data, before validation (:mod:`rad_bench.config`): the safe YAML
loader that also refuses a key given twice, ``include:`` (mappings merge key by key, the including
file wins; cycles are refused), dotted command-line overrides, and YAML errors that say where
(line and column) and how to fix them. Torch-free and free of the registries.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import yaml


class SuiteError(ValueError):
    """A suite cannot be loaded; the message says where and how to fix it."""


class _SuiteLoader(yaml.SafeLoader):
    """The safe loader (plain data: ``!!python/...`` tags are refused) that also refuses a key given
    twice in one mapping, which plain YAML resolves silently by keeping the last."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)  # resolve '<<' merge keys first, as the base class does
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool):
                continue  # an unhashable key is the base class's own error
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key '{key}' appears twice in one mapping", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def _yaml_error(where: str, e: yaml.YAMLError) -> SuiteError:
    """``e`` as: where, line and column, the problem, and how to fix it."""
    problem = str(getattr(e, "problem", None) or e)
    mark, ctx, ctx_mark = (getattr(e, a, None) for a in ("problem_mark", "context", "context_mark"))
    at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    if ctx and ctx_mark:
        problem += f" ({ctx} at line {ctx_mark.line + 1}, column {ctx_mark.column + 1})"
    if "'\\t'" in problem:  # PyYAML quotes the character: found character '\t' ...
        fix = "indent with spaces, not tabs"
    elif "tag:" in problem:
        fix = "suites are plain data and are read with the safe loader: remove the !! tag"
    elif "appears twice" in problem:
        fix = "keep one of them"
    else:
        fix = "check the indentation (spaces, the same per level), brackets and quotes there"
    return SuiteError(f"{where}: malformed YAML{at}: {problem}; {fix}")


MAX_NODES = 100_000  # a suite holds hundreds of values; nested YAML aliases can make 500 bytes expand to 1e8
MAX_DEPTH = 16  # a suite nests four levels (blocks[i].kwargs.x); YAML nested hundreds deep exhausts the stack


def check_shape(obj: Any, where: str) -> None:
    """Refuse a value tree of more than :data:`MAX_NODES` values (a YAML alias counted at every place it is
    used, as a copy or a dump would build it) or nested deeper than :data:`MAX_DEPTH`. Iterative and stopped
    just past the limit, so an alias bomb is measured in microseconds and never printed."""
    count, per_key, stack = 0, Counter[str](), [(obj, 0, "")]
    while stack:
        x, depth, key = stack.pop()
        count += 1
        per_key[key] += 1
        if count > MAX_NODES:
            top = per_key.most_common(1)[0][0] or "the top level"
            raise SuiteError(
                f"{where}: expands to more than {MAX_NODES:,} values (most of them under '{top}'; a YAML alias "
                "(*name) counts once per place it is used); a suite holds a few hundred values: write fewer"
            )
        if depth > MAX_DEPTH:
            raise SuiteError(
                f"{where}: field '{key}' nests deeper than {MAX_DEPTH} levels; a suite nests at most four "
                "(blocks[i].kwargs.x): flatten the value"
            )
        items = x.items() if isinstance(x, dict) else enumerate(x) if isinstance(x, list) else ()
        stack.extend((v, depth + 1, key or str(k)) for k, v in items)


def _load(text: str, where: str) -> Any:
    """``text`` parsed by the suite loader; a malformed, too deeply nested or too large value is a SuiteError."""
    try:
        value = yaml.load(text, Loader=_SuiteLoader)
    except yaml.YAMLError as e:
        raise _yaml_error(where, e) from None
    except RecursionError:
        raise SuiteError(f"{where}: nests deeper than Python can read; a suite nests at most four levels") from None
    check_shape(value, where)
    return value


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        if not path.is_file():
            raise SuiteError(f"{path}: no such suite file (rad-bench ls suites lists the suites in ./suites)")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise SuiteError(f"{path}: not UTF-8 text (byte {e.start}); save the suite as UTF-8") from None
    except OSError as e:  # a name too long, a file that cannot be read (/proc/self/mem), permissions
        raise SuiteError(f"{str(path)[:200]}: cannot be read ({e.strerror or e}); pass a readable suite file") from None
    raw = _load(text, str(path))
    if raw is None:
        raise SuiteError(f"{path}: empty file; a suite needs at least 'name:' and 'blocks:' (see suites/smoke.yaml)")
    if not isinstance(raw, dict):
        raise SuiteError(
            f"{path}: the top level is a {type(raw).__name__}; a suite is a mapping of keys "
            "('name: ...', 'blocks: [...]', ...), not a '- item' list"
        )
    return raw


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def read_with_includes(path: Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    path = path.resolve()
    if path in _seen:
        raise SuiteError(f"{path}: include cycle: {' -> '.join(str(p) for p in (*_seen, path))}")
    raw = _read_yaml(path)
    inc = raw.pop("include", None)
    if inc is None:
        return raw
    if not isinstance(inc, str):
        raise SuiteError(f"{path}: field 'include' must be a file name, got {inc!r}")
    base = path.parent / inc
    if not base.is_file():
        raise SuiteError(f"{path}: field 'include': {base} not found")
    return _merge(read_with_includes(base, (*_seen, path)), raw)


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` strings; values are parsed as YAML (``3``, ``1e-4``, ``[a, b]``)."""
    out = _merge({}, raw)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SuiteError(f"--set {item!r}: expected KEY=VALUE, e.g. --set train.steps=200")
        node = out
        *parents, leaf = key.split(".")
        for i, p in enumerate(parents):
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                at = ".".join(parents[: i + 1])
                raise SuiteError(
                    f"--set {item!r}: '{at}' holds a {type(node).__name__} ({node!r}), not a section of keys; "
                    f"set it as a whole, e.g. --set '{at}=...'"
                )
        node[leaf] = _load(value, f"--set {item[:80]!r}")
    check_shape(out, "the suite with its --set values")
    return out
