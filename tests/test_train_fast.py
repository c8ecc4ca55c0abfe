"""The training fast path on CPU (issue 13): batches drawn ahead (the same batches, exact resume),
bf16 autocast and torch.compile forced on, the ``auto`` switches, the loss read every log_every steps.

OMP_NUM_THREADS=1 pytest tests/test_train_fast.py -m 'compiled or not compiled'   (every test; `make test` leaves
the torch.compile paths out, and CI runs the ones marked `compiled` after it)
"""

from pathlib import Path

import pytest
import torch

import rad_bench.train as train_mod
from rad_bench.batches import BatchFeed
from rad_bench.build import make_dataset, make_model
from rad_bench.config import BlockSpec, load_suite
from rad_bench.model.diffusion import Diffusion
from rad_bench.registry import list_blocks
from rad_bench.train import FastPath, TrainingDiverged, _batch, train

TINY = Path(__file__).parent / "fixtures" / "suites" / "tiny.yaml"


def _suite(*overrides: str):
    return load_suite(TINY, ["blocks=[none]", *overrides])


def _setup(suite, block: str = "none"):
    torch.manual_seed(0)
    data = make_dataset(suite, seed=0)
    diffusion = Diffusion.of(suite.diffusion)
    return make_model(suite, BlockSpec(name=block), data, "cpu"), diffusion, data


def _batches(ahead: bool, n: int) -> tuple[list[list[torch.Tensor]], list[torch.Tensor]]:
    suite = _suite()
    data, diffusion = make_dataset(suite, seed=0), Diffusion(suite.diffusion.levels)
    g = torch.Generator().manual_seed(3)
    out, states = [], []
    with BatchFeed(lambda: _batch(data, diffusion, suite.train, g, "cpu"), g, n, ahead=ahead) as feed:
        for _ in range(n):
            out.append(feed.next())
            states.append(feed.rng_state())
    return out, states


def test_batches_ahead_equal_batches_in_the_step():
    """The thread draws the very batches the step would, and reports the generator state after each."""
    (a, sa), (b, sb) = _batches(ahead=False, n=5), _batches(ahead=True, n=5)
    for x, y in zip(a, b):
        for u, v in zip(x, y):
            assert torch.equal(u, v)
    for u, v in zip(sa, sb):
        assert torch.equal(u, v)


def test_feed_raises_the_draw_error_in_the_consumer_and_closes_early():
    g = torch.Generator()

    def draw():
        raise ValueError("bad batch")

    with BatchFeed(draw, g, 3, ahead=True) as feed, pytest.raises(ValueError, match="bad batch"):
        feed.next()
    with BatchFeed(lambda: torch.randn(2, generator=g), g, 100, ahead=True) as feed:
        feed.next()  # the thread is now blocked on the full queue; leaving the block must not hang


def test_auto_is_fast_on_cuda_and_unchanged_on_cpu():
    cfg = _suite().train
    assert FastPath.of(cfg, "cpu") == FastPath(compile=False, bf16=False, batches_ahead=False, fused_adamw=False)
    assert FastPath.of(cfg, "cuda:0") == FastPath(compile=True, bf16=True, batches_ahead=True, fused_adamw=True)
    forced = _suite("train.compile=on", "train.precision=bf16", "train.prefetch_batches=on").train
    assert FastPath.of(forced, "cpu") == FastPath(compile=True, bf16=True, batches_ahead=True, fused_adamw=False)
    off = _suite("train.compile=off", "train.precision=fp32", "train.prefetch_batches=off").train
    assert FastPath.of(off, "cuda") == FastPath(compile=False, bf16=False, batches_ahead=False, fused_adamw=True)


def test_yaml_on_off_are_words(tmp_path):
    """YAML reads bare on/off as booleans; the switches take them as the words."""
    f = tmp_path / "s.yaml"
    f.write_text(f"include: {TINY}\nblocks: [none]\ntrain: {{compile: off, prefetch_batches: on}}\n")
    t = load_suite(f).train
    assert (t.compile, t.prefetch_batches) == ("off", "on")


def _run(suite, checkpoint: Path | None = None):
    model, diffusion, data = _setup(suite)
    stats = train(model, diffusion, data, suite.train, seed=0, device="cpu", progress=False,
                  checkpoint=checkpoint, cell="none-s0")  # fmt: skip
    return model, stats


class _Killed(Exception):
    pass


def test_resume_with_batches_ahead_is_exact(tmp_path, monkeypatch):
    """Killed after the first checkpoint and resumed, with batches drawn ahead, a run ends with the
    weights and loss log of an uninterrupted run that draws in the step."""
    sets = ["train.steps=6", "train.checkpoint_every=2", "train.log_every=1", "train.ema=0.5"]
    ref_model, ref = _run(_suite(*sets, "train.prefetch_batches=off"))
    ahead = _suite(*sets, "train.prefetch_batches=on")
    save = train_mod.save_train_state

    def save_then_die(*args, **kwargs):
        save(*args, **kwargs)
        raise _Killed

    monkeypatch.setattr(train_mod, "save_train_state", save_then_die)
    with pytest.raises(_Killed):
        _run(ahead, tmp_path / "ck.pt")
    monkeypatch.setattr(train_mod, "save_train_state", save)
    model, stats = _run(ahead, tmp_path / "ck.pt")
    assert stats.log == ref.log and stats.fast["train_batches_ahead"]
    for (k, u), v in zip(ref_model.state_dict().items(), model.state_dict().values()):
        assert torch.equal(u, v), k


def test_loss_read_every_log_every_steps_and_divergence_names_the_step(monkeypatch):
    """The log is unchanged by reading the loss in blocks; a NaN is reported at the step it appeared."""
    _, per_step = _run(_suite("train.steps=6", "train.log_every=1"))
    _, blocks = _run(_suite("train.steps=6", "train.log_every=3"))
    values = [v for _, v in per_step.log]
    assert [s for s, _ in blocks.log] == [3, 6]
    for (_, v), i in zip(blocks.log, (0, 3)):
        assert v == pytest.approx(sum(values[i : i + 3]) / 3, rel=1e-6)
    loss = train_mod.training_loss
    monkeypatch.setattr(train_mod, "training_loss", lambda *a: loss(*a) * float("nan"))
    with pytest.raises(TrainingDiverged, match=r"none-s0: loss is nan at step 0: lower train\.lr"):
        _run(_suite("train.steps=6", "train.log_every=3"))


@pytest.mark.parametrize("block", list_blocks())
def test_bf16_autocast_on_cpu_trains_every_block(block):
    """Forced bf16 on CPU: a few steps, finite losses, float32 weights; recorded in the stats."""
    suite = load_suite(TINY, [f"blocks=[{block}]", "train.precision=bf16", "train.steps=3"])
    model, diffusion, data = _setup(suite, block)
    stats = train(model, diffusion, data, suite.train, seed=0, device="cpu", progress=False)
    assert all(torch.isfinite(torch.tensor(v)) for _, v in stats.log)
    assert stats.fast["train_precision"] == "bf16"
    assert all(p.dtype == torch.float32 for p in model.parameters())


@pytest.mark.slow
@pytest.mark.compiled
def test_compile_and_bf16_forced_on_cpu():
    """torch.compile of the training step works on CPU too (inductor's C++ backend), with bf16 and the
    batches drawn ahead; the model itself stays eager for the rollout. Slow: inductor compiles C++
    (about 4 min on a busy 2-core machine for the first run; its cache makes reruns faster)."""
    block = "full_attn"
    sets = [f"blocks=[{block}]", "train.compile=on", "train.precision=bf16", "train.prefetch_batches=on"]
    suite = load_suite(TINY, [*sets, "train.steps=3"])
    model, diffusion, data = _setup(suite, block)
    stats = train(model, diffusion, data, suite.train, seed=0, device="cpu", progress=False)
    assert len(stats.log) == 3 and all(torch.isfinite(torch.tensor(v)) for _, v in stats.log)
    assert stats.fast == {"train_compile": True, "train_precision": "bf16", "train_batches_ahead": True}
    assert not hasattr(model, "_orig_mod") and "_orig_mod" not in next(iter(model.state_dict()))


@pytest.mark.slow
@pytest.mark.parametrize(
    "compiled, bf16, tol", [pytest.param(True, False, 1e-4, marks=pytest.mark.compiled), (False, True, 0.1)]
)
def test_rollout_fast_path_on_cpu_matches_the_eager_float32_rollout(compiled, bf16, tol):
    """The rollout's denoiser calls through ``torch.compile`` (dynamic shapes: the state grows) give the
    eager result to float32 round-off; under bf16 autocast they stay close (frames live in [-1, 1])."""
    from rad_bench.rollout import rollout

    suite = _suite("blocks=[full_attn]")
    model, diffusion, data = _setup(suite, "full_attn")
    model.eval()
    ev = data.eval_set(2, suite.rollout.context, suite.rollout.horizon)
    r = suite.rollout
    kw = {"context": r.context, "horizon": r.horizon, "sampling_steps": r.sampling_steps, "progress": False}
    eager, _ = rollout(model, diffusion, ev.frames, ev.actions, g=torch.Generator().manual_seed(0), **kw)
    step_model = torch.compile(model, dynamic=True) if compiled else None
    fast, _ = rollout(model, diffusion, ev.frames, ev.actions, g=torch.Generator().manual_seed(0),
                      step_model=step_model, bf16=bf16, **kw)  # fmt: skip
    assert fast.dtype == torch.float32 and (fast - eager).abs().max() < tol


@pytest.mark.parametrize("block", list_blocks())
def test_every_block_rolls_out_under_bf16_autocast(block):
    """``rad-bench bench`` times whole rollouts, commits included, under bf16 autocast. The fused LSTM
    kernels refused that (cuDNN on the first H100 run: input float32, hidden state half; oneDNN on CPU:
    no primitive), so the LSTM scan runs in float32 with autocast off; every block must come back finite
    and close to its float32 rollout."""
    from rad_bench.rollout import rollout

    suite = load_suite(TINY, [f"blocks=[{block}]"])
    model, diffusion, data = _setup(suite, block)
    with torch.no_grad():  # zero-initialised outputs would make every rollout the same
        for p in model.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    model.eval()
    ev = data.eval_set(2, suite.rollout.context, 3)
    kw = {"context": suite.rollout.context, "horizon": 3, "sampling_steps": 2, "progress": False}
    ref, _ = rollout(model, diffusion, ev.frames, ev.actions, g=torch.Generator().manual_seed(0), **kw)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = rollout(model, diffusion, ev.frames, ev.actions, g=torch.Generator().manual_seed(0), **kw)
    assert out.dtype == torch.float32 and torch.isfinite(out).all() and (out - ref).abs().max() < 0.1


@pytest.mark.compiled
@pytest.mark.parametrize("block", ["none", "mamba2"])
def test_compiled_rollout_traces_one_graph(block):
    """The rollout's denoiser is compiled with dynamic shapes; the window cache it reads must keep one
    layout from the context pass on, or every rollout compiles twice (a stride guard; on the first H100
    run compiling dominated a 16-frame rollout). Counted with dynamo's eager backend."""
    from torch._dynamo.utils import counters

    from rad_bench.rollout import rollout

    suite = load_suite(TINY, [f"blocks=[{block}]"])
    model, diffusion, data = _setup(suite, block)
    model.eval()
    r = suite.rollout
    ev = data.eval_set(2, r.context, 4)
    torch._dynamo.reset()
    counters.clear()
    step = torch.compile(model, dynamic=True, backend="eager")
    rollout(model, diffusion, ev.frames, ev.actions, context=r.context, horizon=4, sampling_steps=2,
            g=torch.Generator().manual_seed(0), progress=False, step_model=step)  # fmt: skip
    assert counters["stats"]["unique_graphs"] == 1
