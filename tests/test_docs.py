"""Numbers the README and docs/ state that a test can recompute stay in step with the code; their links resolve.

pytest tests/test_docs.py
"""

import importlib.util
import re
from pathlib import Path

import pytest

from rad_bench.build import make_dataset, model_config
from rad_bench.config import load_suite
from rad_bench.score import frame_tags
from rad_bench.tags import Reach

ROOT = Path(__file__).resolve().parents[1]


def test_smoke_tag_counts_in_the_results_page_match_the_suite():
    """The smoke section's in_window / revisit / novel counts (docs/results.md) are what the suite's episodes give."""
    text = (ROOT / "docs" / "results.md").read_text()
    m = re.search(r"(\d+) generated frames per clip set are\s+`in_window`, (\d+) `revisit`, (\d+) `novel`", text)
    assert m, "docs/results.md: the smoke section no longer states its tag counts"
    suite = load_suite(ROOT / "suites" / "smoke.yaml")
    data, r = make_dataset(suite, 0), suite.rollout
    ev = data.eval_set(r.clips, r.context, r.horizon)
    cfg = model_config(suite, data)
    tags = [t for clip in frame_tags(ev.places, r.context, Reach(cfg.reach)) for t, _ in clip]
    assert tuple(map(int, m.groups())) == tuple(tags.count(t) for t in ("in_window", "revisit", "novel"))


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def test_every_relative_link_in_readme_and_docs_resolves():
    """Every relative link and image in README.md and docs/**/*.md points at a file or folder that exists."""
    root = Path(__file__).resolve().parents[1]
    broken = []
    for page in [root / "README.md", *sorted((root / "docs").rglob("*.md"))]:
        for target in LINK.findall(page.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # a web address or an anchor in the page
            path = (page.parent / target.split("#")[0]).resolve()
            if not path.exists():
                broken.append(f"{page.relative_to(root)}: {target}")
    assert not broken, "links that point nowhere:\n" + "\n".join(broken)


def test_readme_is_a_front_page():
    """README.md stays a front page (the question, two commands, the headline results, where to read more);
    the per-suite results, usage, method and efficiency live in docs/."""
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 200, f"README.md is {len(lines)} lines; move detail into a docs/ page"
    for page in ("results.md", "usage.md", "method.md", "efficiency.md"):
        assert f"(docs/{page})" in "\n".join(lines), f"README.md does not link docs/{page}"


EXPERIMENTS = sorted((ROOT / "experiments").rglob("*.py"))


@pytest.mark.parametrize("script", EXPERIMENTS, ids=[str(p.relative_to(ROOT / "experiments")) for p in EXPERIMENTS])
def test_every_experiment_script_imports(script, monkeypatch):
    """Each diagnostic under experiments/ imports (its imports resolve against today's package; importing runs
    nothing: work starts under ``if __name__ == "__main__"``), with its own folder on the path as when run."""
    monkeypatch.syspath_prepend(str(script.parent))
    spec = importlib.util.spec_from_file_location(f"experiment_{script.stem}", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.__doc__, f"{script}: say in a docstring what it measures and how to run it"
