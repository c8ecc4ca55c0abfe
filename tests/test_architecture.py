"""The package's shape: import layers (no import from a lower layer to a higher one, no cycles),
torch-free config and report, module and function sizes. Static (``ast``), except one subprocess.

pytest tests/test_architecture.py
"""

from __future__ import annotations

import ast
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Lowest first. A module may import from its own layer or a lower one, never from a higher one. The one
# way up is the registries' discovery (importlib by package name, not an import statement): it is how
# rad_bench reaches blocks/, rad_bench/data/* and rad_bench/metrics/specs/*.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("foundation (torch-free)", ("rad_bench.utils", "rad_bench.tags", "rad_bench.registry", "rad_bench.suitefile",
                                 "rad_bench.model.presets", "rad_bench.results", "rad_bench.stats",
                                 "rad_bench.completion", "rad_bench.schema", "rad_bench.limits", "rad_bench.dataconfig",
                                 "rad_bench.distributed")),
    ("primitives", ("rad_bench.metrics", "rad_bench.data", "rad_bench.ops", "rad_bench.block", "rad_bench.model",
                    "rad_bench.reference", "rad_bench.batches")),
    ("suite validation", ("rad_bench.config", "rad_bench.sections", "rad_bench.blockargs", "rad_bench.sizes",
                          "rad_bench.mqar.config", "rad_bench.kinds")),
    ("blocks", ("blocks",)),
    ("phases", ("rad_bench.rollout", "rad_bench.modes", "rad_bench.train", "rad_bench.score", "rad_bench.build",
                "rad_bench.mqar", "rad_bench.curve", "rad_bench.plan")),
    ("report (torch-free)", ("rad_bench.report",)),
    ("runs", ("rad_bench.rundir", "rad_bench.reuse", "rad_bench.cell", "rad_bench.runner", "rad_bench.launch",
              "rad_bench.token_run")),
    ("benchmark", ("rad_bench.bench",)),
    ("entry points", ("rad_bench.cli", "rad_bench.__main__", "rad_bench.mqar.__main__", "rad_bench.bench.__main__",
                      "rad_bench")),
]  # fmt: skip
TORCH_FREE = (
    "rad_bench.config",
    "rad_bench.kinds",
    "rad_bench.sections",
    "rad_bench.sizes",
    "rad_bench.report",
)  # importing these must never load torch


def _modules() -> dict[str, Path]:
    files = [*(ROOT / "rad_bench").rglob("*.py"), *(ROOT / "blocks").glob("*.py")]
    names = {".".join(f.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): f for f in files}
    return dict(sorted(names.items()))


MODULES = _modules()


def _layer(module: str) -> int:
    """Index of the layer whose longest prefix matches ``module`` (``rad_bench`` itself: the package only)."""
    best = (-1, -1)
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if module == p or (p != "rad_bench" and module.startswith(p + ".")):
                best = max(best, (len(p), i))
    return best[1]


def _targets(node: ast.Import | ast.ImportFrom) -> list[str]:
    """The project modules an import statement loads (``from pkg import mod`` names the module)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = node.module or ""
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
    return [n for n in names if n.split(".")[0] in ("rad_bench", "blocks")]


def _loads_torch(node: ast.Import | ast.ImportFrom) -> bool:
    if isinstance(node, ast.Import):
        return any(a.name.split(".")[0] == "torch" for a in node.names)
    return (node.module or "").split(".")[0] == "torch"


def _imports(module: str, eager_only: bool = False) -> set[str]:
    """Modules imported by ``module`` (``torch`` among them if it imports torch): every import statement,
    or with ``eager_only`` those that run when the module is imported (not inside functions)."""
    tree = ast.parse(MODULES[module].read_text())
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if eager_only and isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if isinstance(child, ast.Import | ast.ImportFrom):
                out.update(_targets(child))
                out.update(["torch"] if _loads_torch(child) else [])
            visit(child)

    visit(tree)
    return out - {module}


def test_every_module_has_a_layer():
    unplaced = [m for m in MODULES if _layer(m) < 0]
    assert not unplaced, f"add these modules to LAYERS in {__file__}: {unplaced}"


def test_no_import_from_a_lower_layer_to_a_higher_one():
    upward = [
        f"{m} ({LAYERS[_layer(m)][0]}) imports {t} ({LAYERS[_layer(t)][0]})"
        for m in MODULES
        for t in sorted(_imports(m) - {"torch"})
        if _layer(t) > _layer(m)
    ]
    assert not upward, "\n".join(upward)


def test_no_import_cycles():
    graph = {m: _imports(m) - {"torch"} for m in MODULES}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def walk(m: str, path: list[str]) -> None:
        state[m] = 1
        for t in sorted(graph.get(m, ())):
            if state.get(t) == 1:
                pytest.fail("import cycle: " + " -> ".join([*path[path.index(t) :], t]))
            if t not in state:
                walk(t, [*path, t])
        state[m] = 2

    for m in graph:
        if m not in state:
            walk(m, [m])


@pytest.mark.parametrize("root", TORCH_FREE)
def test_torch_free_modules_import_no_torch_module(root):
    """Statically: nothing ``root`` loads at import time (its own modules and what they import) imports
    torch. Lazy imports inside functions (e.g. config's dataset checks) run only when called."""
    seen, todo = set(), [m for m in MODULES if m == root or m.startswith(root + ".")]
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo += [t for t in _imports(m, eager_only=True) if t in MODULES]
    culprits = sorted(m for m in seen if "torch" in _imports(m, eager_only=True))
    assert not culprits, f"importing {root} imports torch through {culprits}"


def test_config_and_report_import_without_torch():
    """With torch made unimportable, the config and the report (with the metric registry) still load."""
    code = (
        "import sys\n"
        "sys.modules['torch'] = None  # any import of torch now raises ImportError\n"
        "import rad_bench.config, rad_bench.report\n"
        "from rad_bench.metrics import get_metric\n"
        "assert get_metric('fvd').scope == 'set'  # the registry's discovery is torch-free too\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr


def test_module_and_function_sizes():
    """No module in rad_bench/ over 450 lines; functions short (median <= 15 lines, none over 60)."""
    long_modules, lengths, long_functions = [], [], []
    for name, f in MODULES.items():
        if not name.startswith("rad_bench"):
            continue
        text = f.read_text()
        if len(text.splitlines()) > 450:
            long_modules.append(f"{name}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lengths.append(node.end_lineno - node.lineno + 1)
                if lengths[-1] > 60:
                    long_functions.append(f"{name}.{node.name}: {lengths[-1]} lines")
    assert not long_modules, long_modules
    assert not long_functions, long_functions
    assert statistics.median(lengths) <= 15
