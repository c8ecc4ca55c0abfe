"""Token-level MQAR calibration (rad_bench.mqar): generator, token model over every registered block,
causality, a small learning check (full_attn learns recall, none cannot), the suite file, the outputs."""

import numpy as np
import pandas as pd
import pytest
import torch

from rad_bench.mqar import MQARConfig, load_mqar, make_mqar, stream
from rad_bench.mqar.data import IGNORE, PAD, SPLIT
from rad_bench.mqar.run import choose_lr
from rad_bench.mqar.train import build_model, score, train
from rad_bench.registry import BLOCKS
from rad_bench.suitefile import SuiteError
from rad_bench.token_run import run_mqar

KV, VV = 16, 8  # key and value vocabularies of the small cases


def _pairs(x: torch.Tensor, k: int, layout: str) -> tuple[np.ndarray, np.ndarray]:
    """The written keys and values of each sequence, ``(n, k)`` each."""
    if layout == "pair":
        return x[:, :k, 0].numpy(), x[:, :k, 1].numpy()
    return x[:, 0 : 2 * k : 2, 0].numpy(), x[:, 1 : 2 * k : 2, 0].numpy()


@pytest.mark.parametrize("layout", ["pair", "split"])
@pytest.mark.parametrize("k", [1, 4, 8])
def test_generator_pairs_and_targets(layout, k):
    x, y = make_mqar(stream(0, "train"), 64, k, 40, KV, VV, layout)
    assert x.shape == (64, 40, 2 if layout == "pair" else 1) and y.shape == (64, 40)
    keys, values = _pairs(x, k, layout)
    assert ((keys >= 1) & (keys <= KV)).all() and ((values > KV) & (values <= KV + VV)).all()
    for i in range(64):
        assert len(set(keys[i])) == k, "keys of a sequence must be distinct"
        lookup = dict(zip(keys[i], values[i]))
        at = np.flatnonzero(y[i].numpy() != IGNORE)
        assert len(at) == k and at.min() >= (k if layout == "pair" else 2 * k)  # K queries, after the writes
        assert sorted(x[i, at, 0].tolist()) == sorted(keys[i].tolist())  # every key asked once
        for t in at:
            assert y[i, t] == lookup[int(x[i, t, 0])], "a query's target is its key's value"
        rest = np.setdiff1d(np.arange((k if layout == "pair" else 2 * k), 40), at)
        assert (x[i, rest] == PAD).all()  # the query region holds only queries and pads
        if layout == "pair":
            assert (x[i, at, 1] == PAD).all()  # a query carries no value


def test_generator_seeds_reproducible_and_splits_disjoint():
    a = make_mqar(stream(3, "train"), 8, 4, 24, KV, VV)
    b = make_mqar(stream(3, "train"), 8, 4, 24, KV, VV)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert not torch.equal(a[0], make_mqar(stream(4, "train"), 8, 4, 24, KV, VV)[0])
    # train, val and eval are distinct streams of one seed, and the ids themselves are distinct
    assert len(set(SPLIT.values())) == len(SPLIT)
    draws = {s: make_mqar(stream(3, s, None if s == "train" else 4), 8, 4, 24, KV, VV)[0] for s in SPLIT}
    assert not torch.equal(draws["train"], draws["val"]) and not torch.equal(draws["val"], draws["eval"])
    seeds = {(3, SPLIT["train"]), (3, SPLIT["val"], 4), (3, SPLIT["eval"], 4)}
    assert len(seeds) == 3


def _tiny(**kw) -> MQARConfig:
    base = {"ks": [2, 3], "seeds": [0], "dim": 16, "heads": 2, "layers": 2, "seq_len": 12, "key_vocab": KV,
            "value_vocab": VV, "steps": 3, "batch": 4, "warmup": 1, "eval_size": 8, "val_size": 8,
            "progress": False}  # fmt: skip
    return MQARConfig(**{**base, **kw})


@pytest.mark.parametrize("block", BLOCKS.names())
def test_model_shapes_every_block(block):
    cfg = _tiny()
    model = build_model(cfg, block)
    x, y = make_mqar(stream(0, "train"), 3, 2, cfg.seq_len, KV, VV)
    logits = model(x)
    assert logits.shape == (3, cfg.seq_len, 1 + KV + VV)
    logits.logsumexp(-1).mean().backward()  # gradients reach the parameters
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("block", BLOCKS.names())
def test_model_is_causal(block):
    """A step's logits do not change when later tokens change (with non-zero output projections)."""
    torch.manual_seed(1)
    cfg = _tiny()
    model = build_model(cfg, block).eval()
    with torch.no_grad():
        for p in model.parameters():  # undo the zero-initialised output projections
            p.add_(0.2 * torch.randn_like(p))
    x, _ = make_mqar(stream(0, "eval"), 2, 3, cfg.seq_len, KV, VV)
    x2 = x.clone()
    cut = 5
    x2[:, cut + 1 :, 0] = torch.randint(1, KV + 1, x2[:, cut + 1 :, 0].shape)
    with torch.no_grad():
        a, b = model(x), model(x2)
    torch.testing.assert_close(a[:, : cut + 1], b[:, : cut + 1], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(a[:, cut + 1 :], b[:, cut + 1 :])  # the change itself is seen


def test_full_attn_learns_recall_none_cannot():
    """K = 2, short sequences: attention must end far above chance, ``none`` (no mixing) at chance."""
    cfg = _tiny(ks=[2], dim=32, heads=2, layers=2, seq_len=10, steps=150, batch=32, lr=1e-2, warmup=10,
                eval_size=256)  # fmt: skip
    acc = {b: score(train(cfg, b, 0), cfg, "eval")[0]["accuracy"] for b in ["full_attn", "none"]}
    chance = 1 / VV
    assert acc["full_attn"] > 0.6, acc
    assert abs(acc["none"] - chance) < 0.08, acc


def test_training_is_deterministic():
    cfg = _tiny(steps=4)
    a, b = (score(train(cfg, "mamba2", 5), cfg, "val") for _ in range(2))
    assert [r["accuracy"] for r in a] == [r["accuracy"] for r in b]
    assert a[0]["final_loss"] == b[0]["final_loss"]


def _write(tmp_path, text: str):
    p = tmp_path / "mqar_test.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    "text, field",
    [
        ("ks: [2, 4]\nstepz: 10\n", "stepz"),
        ("ks: [2, 4]\nsteps: many\n", "steps"),
        ("blocks: [none, ful_attn]\n", "blocks[1]"),
        ("ks: [2, 8]\nseq_len: 10\n", "seq_len"),
        ("ks: [2, 2]\n", "ks"),
        ("lr_per_block: {mamba3: 0.01}\n", "lr_per_block.mamba3"),
        ("seeds: [0, 1]\nsweep_seed: 1\n", "sweep_seed"),
    ],
)
def test_yaml_errors_name_file_and_field(tmp_path, text, field):
    path = _write(tmp_path, text)
    with pytest.raises(SuiteError) as e:
        load_mqar(path)
    assert str(path) in str(e.value) and f"field '{field}'" in str(e.value), str(e.value)


def test_suite_file_loads():
    cfg = load_mqar("suites/mqar.yaml")
    assert {2, 4, 8, 16} <= set(cfg.ks) and len(cfg.seeds) >= 3
    assert set(cfg.block_names()) == set(BLOCKS.names())


def test_run_mqar_writes_outputs(tmp_path):
    cfg = _tiny(blocks=["none", "full_attn"], seeds=[0, 1], steps=2)
    df = run_mqar(cfg, tmp_path)  # the run folder layout every suite shares
    assert len(df) == 2 * 2 * 2
    csv = pd.read_csv(tmp_path / "metrics.csv")
    for col in ["block", "K", "seed", "accuracy", "chance", "params", "steps", "lr"]:
        assert col in csv.columns
    cells = sorted(p.name for p in (tmp_path / "cells").iterdir())
    assert cells == ["full_attn-s0", "full_attn-s1", "none-s0", "none-s1"]
    assert all((tmp_path / "cells" / c / "done.json").is_file() for c in ("none-s0", "full_attn-s1"))
    md = (tmp_path / "leaderboard.md").read_text()
    assert "| full_attn |" in md and "±" in md
    assert (tmp_path / "figures" / "mqar_acc_vs_k.png").read_bytes()[:4] == b"\x89PNG"
    assert "full_attn" in (tmp_path / "report.html").read_text()


def test_choose_lr_needs_a_margin_over_the_default():
    sweep = pd.DataFrame(
        [("a", 1e-3, 2, 0.5), ("a", 1e-3, 4, 0.5), ("a", 1e-2, 2, 0.9), ("a", 1e-2, 4, 0.3),
         ("b", 1e-3, 2, 0.2), ("b", 3e-3, 2, 0.2), ("b", 1e-2, 2, 0.21),
         ("c", 3e-3, 2, 0.5), ("c", 1e-2, 2, 0.8)],
        columns=["block", "lr", "K", "accuracy"],
    )  # fmt: skip
    assert choose_lr(sweep, 3e-3) == {"a": 1e-2, "b": 3e-3, "c": 1e-2}
