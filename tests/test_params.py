"""Parameter matching: every block's model in a suite has (about) the same size.

pytest tests/test_params.py
"""

from pathlib import Path

from rad_bench.build import make_dataset, make_model
from rad_bench.config import load_suite
from rad_bench.model.dit import block_params, count_params
from rad_bench.registry import list_blocks

FIXTURES = Path(__file__).parent / "fixtures" / "suites"


def test_all_blocks_within_5_percent():
    suite = load_suite(FIXTURES / "tiny.yaml", [f"blocks=[{', '.join(list_blocks())}]"])
    data = make_dataset(suite, 0)
    totals = {b.name: count_params(make_model(suite, b, data, "cpu")) for b in suite.blocks}
    assert max(totals.values()) <= 1.05 * min(totals.values()), totals


def test_matching_can_be_turned_off():
    suite = load_suite(FIXTURES / "tiny.yaml", ["model.match_params=false"])
    data = make_dataset(suite, 0)
    none, full = (make_model(suite, b, data, "cpu") for b in suite.blocks)
    assert count_params(full) - count_params(none) == block_params(full)
