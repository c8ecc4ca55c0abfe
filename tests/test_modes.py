"""Training modes (rad_bench.modes): frame-wise prefetch == the naive window-by-window loop,
chunked attention, clean prefix, action-to-memory switch, and one state path shared with rollouts.

pytest tests/test_modes.py
"""

import pytest
import torch

from rad_bench import modes, rollout
from rad_bench.config import TrainCfg
from rad_bench.model.diffusion import Diffusion
from rad_bench.model.dit import DiTConfig, build_model
from rad_bench.registry import get_block, list_blocks

B, T, A = 2, 7, 5


def make_model(name: str, **cfg_kwargs):
    torch.manual_seed(0)
    cfg = DiTConfig(frame_size=8, patch=4, dim=32, depth=2, heads=2, window=3, action_dim=A, **cfg_kwargs)
    model = build_model(cfg, get_block(name), {})
    with torch.no_grad():  # zero-initialised gates and projections would hide every difference
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def batch(seed: int = 0, t: int = T):
    g = torch.Generator().manual_seed(seed)
    frames = torch.rand(B, t, 3, 8, 8, generator=g) * 2 - 1
    actions = torch.randn(B, t, A, generator=g)
    levels = torch.randint(1, 101, (B, t), generator=g)
    return frames, actions, levels, torch.randn(frames.shape, generator=g)


@pytest.mark.parametrize("name, anchor", [(n, False) for n in list_blocks()] + [("lstm_attn", True)])
def test_frame_prefetch_equals_naive_window_loop(name, anchor):
    model, diffusion = make_model(name, anchor=anchor), Diffusion(100, "x0")
    frames, actions, k, eps = batch()
    fast = modes.training_loss(model, diffusion, frames, actions, k, eps, TrainCfg(mode="frame"))
    fast_grads = torch.autograd.grad(fast, list(model.parameters()), allow_unused=True)
    naive = modes.frame_loss_naive(model, diffusion, frames, actions, k, eps)
    naive_grads = torch.autograd.grad(naive, list(model.parameters()), allow_unused=True)
    assert abs(fast.item() - naive.item()) < 1e-5
    for (pname, _), g1, g2 in zip(model.named_parameters(), fast_grads, naive_grads):
        assert (g1 is None) == (g2 is None), pname
        if g1 is not None:
            torch.testing.assert_close(g1, g2, atol=1e-5, rtol=1e-4, msg=pname)


def test_frame_mode_differs_from_diffusion_forcing():
    """The two-stream pass really reads clean context: it is not the one-stream noisy forward."""
    model, diffusion = make_model("lstm_attn"), Diffusion(100, "x0")
    frames, actions, k, eps = batch()
    frame = modes.training_loss(model, diffusion, frames, actions, k, eps, TrainCfg(mode="frame"))
    df = modes.training_loss(model, diffusion, frames, actions, k, eps, TrainCfg(mode="df"))
    assert abs(frame.item() - df.item()) > 1e-4


def test_prefetch_grad_off_same_loss_fewer_gradients():
    model, diffusion = make_model("mamba2"), Diffusion(100, "x0")
    frames, actions, k, eps = batch()
    on = modes.training_loss(model, diffusion, frames, actions, k, eps, TrainCfg(mode="frame"))
    off = modes.training_loss(model, diffusion, frames, actions, k, eps, TrainCfg(mode="frame", prefetch_grad=False))
    assert abs(on.item() - off.item()) < 1e-6
    g_on = torch.autograd.grad(on, model.layers[0].memory.A_log)[0]
    g_off = torch.autograd.grad(off, model.layers[0].memory.A_log)[0]
    assert not torch.allclose(g_on, g_off), "detaching the prefetch must change the recurrence's gradient"


@pytest.mark.parametrize("name", ["none", "lstm_attn"])
def test_chunked_attention_parallel_equals_chunk_by_chunk(name):
    model = make_model(name, attention="chunk")
    frames, actions, k, _ = batch(t=8)
    out, _ = model(frames, k, actions)
    state, parts = None, []
    for s, e in ((0, 3), (3, 6), (6, 8)):  # chunk boundaries of window 3
        y, state = model(frames[:, s:e], k[:, s:e], actions[:, s:e], state)
        parts.append(y)
    torch.testing.assert_close(torch.cat(parts, dim=1), out, atol=1e-5, rtol=1e-5)
    # attention never crosses a chunk boundary: with no memory, chunk 2 ignores chunk 1
    frames2 = frames.clone()
    frames2[:, :3] += 1.0
    out2, _ = model(frames2, k, actions)
    if name == "none":
        torch.testing.assert_close(out2[:, 3:], out[:, 3:], atol=1e-6, rtol=0)
    else:  # the memory carries state across the boundary
        assert not torch.allclose(out2[:, 3:], out[:, 3:])


def test_chunk_rollout_generates_whole_chunks(monkeypatch):
    model = make_model("lstm_attn", attention="chunk").eval()
    frames, actions, _, _ = batch(t=12)
    shapes = []
    sample = Diffusion.sample

    def spy(self, predict, noise, steps):
        shapes.append(noise.shape[1])
        return sample(self, predict, noise, steps)

    monkeypatch.setattr(Diffusion, "sample", spy)
    out, _ = rollout.rollout(model, Diffusion(100, "x0"), frames, actions, context=4, horizon=8, sampling_steps=2,
                             g=torch.Generator().manual_seed(0), progress=False)  # fmt: skip
    assert shapes == [2, 3, 3]  # up to the boundary at frame 6, then whole chunks of window 3
    assert out.shape[1] == 8


def test_rollout_and_naive_training_share_one_state_path(monkeypatch):
    """The naive frame loss and rollouts call the same `denoiser` / `commit` (no second copy)."""
    assert modes.commit is rollout.commit and modes.denoiser is rollout.denoiser
    model = make_model("mamba2").eval()
    frames, actions, _, _ = batch(t=6)
    calls = []
    real = rollout.commit
    monkeypatch.setattr(rollout, "commit", lambda *a: calls.append(a[1].shape[1]) or real(*a))
    rollout.rollout(model, Diffusion(100, "x0"), frames, actions, context=3, horizon=3, sampling_steps=2,
                    g=torch.Generator().manual_seed(0), progress=False)  # fmt: skip
    assert calls == [3, 1, 1, 1]


def test_clean_prefix_levels():
    d, g = Diffusion(100), torch.Generator().manual_seed(0)
    k = modes.sample_train_levels(d, (64, 12), TrainCfg(mode="frame", clean_prefix=1.0), g)
    prefix = (k == 0).int().argmin(dim=1)  # first noisy frame = prefix length (frame mode: no other clean)
    assert ((prefix > 6) & (prefix < 12)).all() and len(set(prefix.tolist())) > 1
    assert ((k == 0).cumsum(1) == torch.arange(1, 13).clamp(max=prefix[:, None])).all()
    none = modes.sample_train_levels(d, (64, 12), TrainCfg(mode="frame", clean_prefix=0.0, clean_prob=0.5), g)
    assert (none > 0).all(), "frame mode denoises every frame from clean context: no clean targets"
    half = modes.sample_train_levels(d, (4000, 12), TrainCfg(mode="chunk", clean_prefix=0.5, clean_prob=0.0), g)
    assert abs((half[:, 0] == 0).float().mean().item() - 0.5) < 0.05


def test_memory_action_switch(monkeypatch):
    seen = []
    for flag in (True, False):
        model = make_model("lstm_attn", memory_action=flag)
        block = model.layers[0].memory
        real = block.forward
        monkeypatch.setattr(
            block, "forward", lambda x, s, a, real=real: seen.append(a.abs().sum().item()) or real(x, s, a)
        )
        frames, actions, k, _ = batch()
        model(frames, k, actions)
    assert seen[0] > 0 and seen[1] == 0
