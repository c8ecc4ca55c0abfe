"""Extension points: a new block, a new metric and a new dataset are each one new file, found by the
registries' folder discovery with no edit anywhere else. This test writes a throwaway file of each
kind into a temporary folder on its package's path, discovers them, runs the block contract tests on
the block, and runs a tiny suite that uses all three (train, roll out, score, leaderboard).

pytest tests/test_extension.py
"""

from __future__ import annotations

import inspect
import itertools
import sys
from pathlib import Path

import pandas as pd
import pytest
import test_blocks_contract as contract

import blocks
import rad_bench.data
import rad_bench.metrics.specs
from rad_bench.build import make_dataset
from rad_bench.config import SuiteError, load_suite
from rad_bench.registry import BLOCKS, DATASETS, METRICS, import_submodules
from rad_bench.runner import run_suite

FIXTURES = Path(__file__).parent / "fixtures" / "suites"

BLOCK = '''"""``scratch_ema``: each token's exponential moving average of its past inputs (a throwaway block)."""

import torch
from torch import Tensor, nn

from rad_bench.block import MemoryBlock, State
from rad_bench.registry import register_block


@register_block("scratch_ema")
class ScratchEMA(MemoryBlock):
    """Frame t reads the average of the inputs before it. State: ``m: (b, n, d)``."""

    state_growth = "constant"

    def __init__(self, dim: int, *, heads: int = 4, impl: str = "auto", decay: float = 0.5) -> None:
        super().__init__(dim, heads=heads, impl=impl)
        self.decay = decay
        self.to_out = nn.Linear(dim, dim)
        nn.init.zeros_(self.to_out.weight)
        nn.init.zeros_(self.to_out.bias)

    def init_state(self, batch: int, tokens: int, device: torch.device, dtype: torch.dtype) -> State:
        return {"m": torch.zeros(batch, tokens, self.dim, device=device, dtype=dtype)}

    def forward(self, x: Tensor, state: State, action: Tensor) -> tuple[Tensor, State]:
        m = (state or self.init_state(x.shape[0], x.shape[2], x.device, x.dtype))["m"]
        ys = []
        for t in range(x.shape[1]):
            ys.append(m)
            m = self.decay * m + x[:, t] + action[:, t, None]
        return self.to_out(torch.stack(ys, dim=1)), {"m": m}
'''

METRIC = '''"""``scratchmae``: mean absolute error per frame (a throwaway metric)."""

from rad_bench.metrics import declare


def mae(pred, target):
    return (pred - target).abs().flatten(1).mean(1)


def protocol(**counts: object) -> str:
    return "scratch mae in [-1, 1]"


declare("scratchmae", False, "per_frame", f"{__name__}:mae", "mean absolute error", f"{__name__}:protocol")
'''

DATASET = '''"""``scratch_const``: every clip one random colour, one place (a throwaway dataset)."""

import torch
from pydantic import Field

from rad_bench.data import DataConfig, Dataset, Demand, EvalSet, check_episodes
from rad_bench.registry import register_dataset


class ScratchConfig(DataConfig):
    frame_size: int = Field(16, ge=8)
    episode_len: int = Field(16, ge=2)

    def check(self, need: Demand) -> None:
        check_episodes(need, episode_len=self.episode_len)


@register_dataset("scratch_const")
class ScratchConst(Dataset):
    Config = ScratchConfig
    channels, action_dim = 3, 2

    def __init__(self, cfg: ScratchConfig, seed: int = 0) -> None:
        self.cfg, self.frame_size = cfg, cfg.frame_size

    def _clips(self, n: int, t: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        colour = torch.rand(n, 1, 3, 1, 1, generator=g) * 2 - 1
        return colour.expand(n, t, 3, self.frame_size, self.frame_size).clone(), torch.zeros(n, t, 2)

    def sample(self, batch: int, clip_len: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return self._clips(batch, clip_len, g)

    def eval_set(self, clips: int, context: int, horizon: int) -> EvalSet:
        frames, actions = self._clips(clips, context + horizon, torch.Generator().manual_seed(1))
        return EvalSet(frames, actions, torch.zeros(clips, context + horizon, dtype=torch.long))
'''


@pytest.fixture(scope="module")
def extended(tmp_path_factory):
    """The three files, each in a folder appended to its package's path, discovered; undone afterwards."""
    kinds = [(blocks, BLOCKS, BLOCK), (rad_bench.metrics.specs, METRICS, METRIC), (rad_bench.data, DATASETS, DATASET)]
    saved = [(pkg, list(pkg.__path__), reg, dict(reg._entries)) for pkg, reg, _ in kinds]
    for pkg, reg, source in kinds:
        folder = tmp_path_factory.mktemp(pkg.__name__.replace(".", "_"))
        (folder / "zz_scratch.py").write_text(source)
        pkg.__path__.append(str(folder))
        reg._ensure()
        import_submodules(pkg.__name__)  # what the first lookup does; the file is all it takes
    yield
    for pkg, path, reg, entries in saved:
        pkg.__path__[:] = path
        reg._entries = entries
        sys.modules.pop(f"{pkg.__name__}.zz_scratch", None)


def _contract_cases() -> list[tuple[str, dict]]:
    """Every contract test with each combination of its parameters other than the block name."""
    cases = []
    for name, fn in inspect.getmembers(contract, inspect.isfunction):
        if not name.startswith("test_"):
            continue
        marks = [m for m in getattr(fn, "pytestmark", []) if m.name == "parametrize" and m.args[0] != "name"]
        axes = [[(m.args[0], v) for v in m.args[1]] for m in marks]
        cases += [(name, dict(combo)) for combo in itertools.product(*axes)]
    return cases


def test_the_new_files_are_registered(extended):
    assert "scratch_ema" in BLOCKS.names() and "scratchmae" in METRICS.names() and "scratch_const" in DATASETS.names()


CASES = _contract_cases()


@pytest.mark.parametrize("test, params", CASES, ids=[f"{t}{p or ''}" for t, p in CASES])
def test_new_block_passes_the_contract(extended, test, params):
    getattr(contract, test)(name="scratch_ema", **params)


def test_new_block_metric_and_dataset_run_a_suite(extended, tmp_path):
    overrides = [
        "blocks=[scratch_ema, {name: scratch_ema, label: slow, kwargs: {decay: 0.9}}]",
        "data={name: scratch_const, frame_size: 16}",
        "metrics=[psnr, scratchmae]",
        "leaderboard.sort_by=scratchmae_all",
        "train.steps=2",
    ]
    suite = load_suite(FIXTURES / "tiny.yaml", overrides)
    assert make_dataset(suite, 0).eval_set(3, 4, 6).frames.shape == (3, 10, 3, 16, 16)
    run_dir = run_suite(suite, results_root=tmp_path, progress=False, argv=["test"])
    df = pd.read_csv(run_dir / "metrics.csv")
    mae = df[df["metric"] == "scratchmae"]
    assert set(mae["block"]) == {"scratch_ema", "slow", "copy_last", "recall_oracle"}
    assert (mae["protocol"] == "scratch mae in [-1, 1]").all() and mae["value"].notna().all()
    assert "scratchmae_all ↓" in (run_dir / "leaderboard.md").read_text()


def test_a_dataset_without_splits_serves_test_and_refuses_validation(extended):
    """A dataset whose eval_set predates ``rollout.split`` (three arguments) keeps working on the test
    episodes; asking it for validation episodes is a load-time error naming the field."""
    data = "data={name: scratch_const, frame_size: 16}"
    load_suite(FIXTURES / "tiny.yaml", [data])
    with pytest.raises(SuiteError, match=r"field 'rollout\.split': data\.name 'scratch_const' draws no validation"):
        load_suite(FIXTURES / "tiny.yaml", [data, "rollout.split=validation"])
