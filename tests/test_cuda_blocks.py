"""Every block on CUDA against the CPU result (issue 13): the tests that would have caught lstm_attn's
crash on the first GPU run. Skipped without CUDA; ``make gpu-check`` runs them.

pytest -m cuda tests/test_cuda_blocks.py

The same weights and inputs on both devices, float32 with TF32 off, so the tolerances are those of
float32 arithmetic in a different order (cuDNN, cuBLAS), not of reduced precision: a train step's
loss and gradients, the frame mode's state prefetch (the clean pass that reads every frame), a
rollout step (denoise from the state, then commit the frame into it), and a few steps of the
training fast path (compile, bf16, fused AdamW, batches ahead).
"""

from pathlib import Path

import pytest
import torch

from rad_bench.build import make_dataset, make_model
from rad_bench.config import BlockSpec, load_suite
from rad_bench.model.diffusion import Diffusion
from rad_bench.modes import training_loss
from rad_bench.registry import list_blocks
from rad_bench.rollout import commit, denoiser
from rad_bench.train import _batch, train

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]
TINY = Path(__file__).parent / "fixtures" / "suites" / "tiny.yaml"
RTOL, ATOL = 2e-3, 2e-4  # float32, reordered sums over a few thousand terms


@pytest.fixture(autouse=True)
def _no_tf32():
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def _pair(block: str):
    """The same model on CPU and CUDA, the suite, its data and one training batch (on the CPU)."""
    suite = load_suite(TINY, [f"blocks=[{block}]"])
    data, diffusion = make_dataset(suite, seed=0), Diffusion.of(suite.diffusion)
    torch.manual_seed(0)
    cpu = make_model(suite, BlockSpec(name=block), data, "cpu")
    gpu = make_model(suite, BlockSpec(name=block), data, "cuda")
    gpu.load_state_dict(cpu.state_dict())
    for m in (cpu, gpu):  # non-zero output projections: the block's path must matter
        with torch.no_grad():
            for p in m.parameters():
                p.add_(0.02 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())).to(p.device))
    batch = _batch(data, diffusion, suite.train, torch.Generator().manual_seed(1), "cpu")
    return suite, data, diffusion, cpu, gpu, batch


def _close(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a.cuda().float(), b.float(), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("block", list_blocks())
def test_train_step_matches_cpu(block):
    suite, _, diffusion, cpu, gpu, batch = _pair(block)
    losses = []
    for m, dev in ((cpu, "cpu"), (gpu, "cuda")):
        frames, actions, k, eps, _ = (t.to(dev) for t in batch)
        loss = training_loss(m, diffusion, frames, actions, k, eps, suite.train)
        loss.backward()
        losses.append(loss.detach())
    _close(losses[0], losses[1])
    for (name, p), q in zip(cpu.named_parameters(), gpu.parameters()):
        if p.grad is not None:
            torch.testing.assert_close(p.grad.cuda(), q.grad, rtol=1e-2, atol=1e-4, msg=name)


@pytest.mark.parametrize("block", list_blocks())
def test_state_prefetch_matches_cpu(block):
    """Frame mode's clean pass: the prediction for every frame given the states it reads."""
    suite, _, _, cpu, gpu, (frames, actions, k, _, _) = _pair(block)
    with torch.no_grad():
        ya, _ = cpu(frames, k, actions, clean=frames)
        yb, _ = gpu(frames.cuda(), k.cuda(), actions.cuda(), clean=frames.cuda())
    _close(ya, yb)


@pytest.mark.parametrize("block", list_blocks())
def test_rollout_step_matches_cpu(block):
    """Commit a context into the state, denoise one new frame from it, commit that frame."""
    suite, _, _, cpu, gpu, (frames, actions, k, eps, _) = _pair(block)
    w = suite.model.window
    outs = []
    with torch.no_grad():
        for m, dev in ((cpu, "cpu"), (gpu, "cuda")):
            f, a, n, lv = frames.to(dev), actions.to(dev), eps.to(dev), k.to(dev)
            state = commit(m, f[:, :w], a[:, :w], None)
            y = denoiser(m, a[:, w : w + 1], state)(n[:, w : w + 1], lv[:, w : w + 1].clamp(min=1))
            state = commit(m, f[:, w : w + 1], a[:, w : w + 1], state)
            outs.append((y, denoiser(m, a[:, w + 1 : w + 2], state)(n[:, w + 1 : w + 2], lv[:, w + 1 : w + 2])))
    for a, b in zip(*outs):
        _close(a, b)


def _fast_train(block: str, *sets: str) -> dict:
    suite = load_suite(TINY, [f"blocks=[{block}]", "train.steps=4", "train.log_every=2", *sets])
    data, diffusion = make_dataset(suite, seed=0), Diffusion(suite.diffusion.levels)
    model = make_model(suite, BlockSpec(name=block), data, "cuda")
    stats = train(model, diffusion, data, suite.train, seed=0, device="cuda", progress=False)
    assert all(torch.isfinite(torch.tensor(v)) for _, v in stats.log)
    return stats.fast


@pytest.mark.parametrize("block", list_blocks())
def test_bf16_fast_path_trains_on_cuda(block):
    """bf16 autocast, fused AdamW, batches ahead on CUDA; finite losses. Eager: compiling each block
    takes about 45 s on an H100, and ``make gpu-check`` compiles every block in its smoke run."""
    fast = _fast_train(block, "train.compile=off")
    assert fast == {"train_compile": False, "train_precision": "bf16", "train_batches_ahead": True}


def test_auto_fast_path_compiles_on_cuda():
    """``auto`` on CUDA: the compiled step as well."""
    assert _fast_train("lstm_attn") == {"train_compile": True, "train_precision": "bf16", "train_batches_ahead": True}
