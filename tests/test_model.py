"""The shared video DiT, the diffusion sampler and the rollout.

pytest tests/test_model.py
"""

import pytest
import torch

from rad_bench.model.diffusion import Diffusion
from rad_bench.model.dit import DiTConfig, build_model
from rad_bench.registry import get_block, list_blocks
from rad_bench.rollout import rollout

CFG = DiTConfig(frame_size=8, patch=4, dim=32, depth=2, heads=2, window=3, action_dim=5)


def make(name="none", seed=0, cfg=CFG):
    torch.manual_seed(seed)
    model = build_model(cfg, get_block(name), {})
    with torch.no_grad():  # leave the zero init so every branch is active
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def batch(t=7, b=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, t, 3, 8, 8, generator=g)
    return x, torch.randint(0, 1000, (b, t), generator=g), torch.randn(b, t, 5, generator=g)


def test_zero_init_predicts_zero():
    model = build_model(CFG, get_block("full_attn"), {})
    x, k, a = batch()
    y, _ = model(x, k, a)
    assert y.shape == x.shape and torch.all(y == 0)


@pytest.mark.parametrize("name", list_blocks())
def test_causal_in_time(name):
    model = make(name)
    x, k, a = batch()
    with torch.no_grad():
        y, _ = model(x, k, a)
        x2, a2 = x.clone(), a.clone()
        x2[:, 4:] += 1.0
        a2[:, 4:] -= 1.0
        y2, _ = model(x2, k, a2)
    torch.testing.assert_close(y2[:, :4], y[:, :4], atol=1e-5, rtol=0)
    assert not torch.allclose(y2[:, 4:], y[:, 4:])


def test_reach_of_stacked_windows():
    """With the `none` block, frame t sees frames back to t - reach + 1 and nothing older:
    stacked windowed attention reaches depth * (window - 1) + 1 frames (here 2 * 2 + 1 = 5)."""
    assert CFG.reach == 5
    model = make("none")
    x, k, a = batch(t=7)
    with torch.no_grad():
        y, _ = model(x, k, a)
        x2 = x.clone()
        x2[:, 0] += 3.0
        y2, _ = model(x2, k, a)
    torch.testing.assert_close(y2[:, 5:], y[:, 5:], atol=1e-5, rtol=0)
    assert not torch.allclose(y2[:, 4], y[:, 4])


@torch.no_grad()
def assert_frame_by_frame_equals_parallel(model, x, k, a):
    """One call over the frames == one call per frame carrying the state; the state after them."""
    y, _ = model(x, k, a)
    state, ys = None, []
    for i in range(x.shape[1]):
        yi, state = model(x[:, i : i + 1], k[:, i : i + 1], a[:, i : i + 1], state)
        ys.append(yi)
    torch.testing.assert_close(torch.cat(ys, 1), y, atol=2e-5, rtol=1e-4)
    return state


@pytest.mark.parametrize("name", list_blocks())
def test_frame_by_frame_equals_parallel(name):
    """Rollout relies on this: one call over t frames == t calls carrying the state (KV + memory)."""
    model = make(name)
    x, k, a = batch(t=7)
    state = assert_frame_by_frame_equals_parallel(model, x, k, a)
    assert state.t0 == 7
    assert state.kv[0][0].shape[2] == CFG.window - 1  # the window cache holds window-1 frames


def test_action_changes_prediction():
    model = make("none")
    x, k, a = batch()
    with torch.no_grad():
        assert not torch.allclose(model(x, k, a)[0], model(x, k, a + 1)[0])


@pytest.mark.parametrize("prediction", ["eps", "v", "x0"])
def test_diffusion_roundtrip_and_sampler(prediction):
    d = Diffusion(100, prediction)
    x0 = torch.rand(2, 3, 3, 4, 4) * 2 - 1
    eps = torch.randn_like(x0)
    k = torch.tensor([[0, 50, 100], [1, 99, 30]])
    xk = d.q_sample(x0, k, eps)
    assert torch.equal(xk[0, 0], x0[0, 0])  # level 0 is exactly clean
    x0_hat, eps_hat = d.to_x0_eps(xk, k, d.target(x0, k, eps))
    torch.testing.assert_close(x0_hat, x0, atol=1e-4, rtol=0)
    # an oracle predictor that knows x0 makes DDIM land exactly on x0 from pure noise
    target = x0[:, :1]

    def oracle(x, lv):
        ab = d._ab(lv, x)
        e = (x - ab.sqrt() * target) / (1 - ab).sqrt()
        return d.target(target, lv, e)

    out = d.sample(oracle, torch.randn_like(target), steps=5)
    torch.testing.assert_close(out, target, atol=1e-4, rtol=0)
    assert d.schedule(5)[0] == 100 and d.schedule(5)[-1] == 0


def test_loss_ignores_clean_frames():
    d = Diffusion(100)
    x0 = torch.randn(1, 2, 3, 4, 4)
    k = torch.tensor([[0, 10]])
    eps = torch.randn_like(x0)

    def predict(x, lv):  # perfect on frame 1, garbage on the clean frame 0
        out = d.target(x0, lv, eps).clone()
        out[:, 0] = 100.0
        return out

    assert d.loss(predict, x0, k, eps).item() == 0.0


@pytest.mark.parametrize("name", ["none", "full_attn"])
def test_rollout_past_the_window(name):
    model = make(name)
    frames, _, actions = batch(t=12, b=2)

    def run():
        return rollout(model, Diffusion(50), frames, actions, context=4, horizon=8, sampling_steps=2,
                       g=torch.Generator().manual_seed(0), progress=False)  # fmt: skip

    out, stats = run()
    assert out.shape == (2, 8, 3, 8, 8) and torch.isfinite(out).all()
    assert out.abs().max() <= 1.0
    grows = stats.state_bytes[-1] > stats.state_bytes[0]
    assert grows == (name == "full_attn")
    assert torch.equal(run()[0], out)  # same noise seed, same frames


ANCHORED = DiTConfig(frame_size=8, patch=4, dim=32, depth=2, heads=2, window=3, action_dim=5, anchor=True)


def test_anchor_at_zero_init_predicts_the_last_clean_frame():
    """``anchor``: x0 = the most recent clean frame before each frame (inside the call, else the state's
    last committed frame, else zeros) + the head, which starts at zero."""
    model = build_model(ANCHORED, get_block("full_attn"), {})
    x, _, a = batch(t=5)
    k = torch.tensor([[0, 7, 0, 3, 9], [5, 0, 2, 0, 0]])
    y, state = model(x, k, a)
    torch.testing.assert_close(y[0], torch.stack([torch.zeros_like(x[0, 0]), x[0, 0], x[0, 0], x[0, 2], x[0, 2]]))
    torch.testing.assert_close(y[1], torch.stack([torch.zeros_like(x[1, 0])] * 2 + [x[1, 1]] * 2 + [x[1, 3]]))
    torch.testing.assert_close(state.last, torch.stack([x[0, 2], x[1, 4]]))
    y2, _ = model(x[:, :1], torch.full((2, 1), 9), a[:, :1], state)  # a new noisy frame reads state.last
    torch.testing.assert_close(y2[:, 0], state.last)


@pytest.mark.parametrize("name", ["none", "lstm_attn"])
def test_anchor_frame_by_frame_equals_parallel(name):
    x, k, a = batch(t=6)
    k[:, ::2] = 0  # clean frames between noisy ones
    assert_frame_by_frame_equals_parallel(make(name, cfg=ANCHORED), x, k, a)


def test_suite_anchor_reaches_the_model():
    from pathlib import Path

    from rad_bench.build import make_dataset, make_model
    from rad_bench.config import BlockSpec, load_suite

    tiny = Path(__file__).parent / "fixtures" / "suites" / "tiny.yaml"
    for on in (False, True):
        suite = load_suite(tiny, ["blocks=[none]", f"model.anchor={str(on).lower()}", "diffusion.prediction=x0"])
        assert make_model(suite, BlockSpec(name="none"), make_dataset(suite, seed=0), "cpu").cfg.anchor is on


def _rope_by_halves(x, cos, sin):
    """RoPE as written in its papers: rotate pairs (x_i, x_{i+d/2}) by chunk, negation and concatenation."""
    x1, x2 = x.chunk(2, dim=-1)
    return (x.float() * cos + torch.cat([-x2, x1], dim=-1).float() * sin).to(x.dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rope_equals_rotation_by_halves_bit_for_bit(dtype):
    """The one-flip RoPE (`layers._rotate`) against the chunk-and-concatenate form it replaced, 1-D (temporal) and
    2-D (rows, then columns), values and gradients, exactly."""
    from rad_bench.model.layers import apply_rope, apply_rope_2d, rope_2d, rope_angles

    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 2, 16, 8, generator=g).to(dtype).requires_grad_()
    cos, sin = rope_angles(torch.arange(5, 21), 8)
    ref = _rope_by_halves(x, cos, sin)
    got = apply_rope(x, cos, sin)
    assert torch.equal(got, ref)
    assert torch.equal(*(torch.autograd.grad(y.float().square().sum(), x)[0] for y in (got, ref)))
    cos2, sin2 = rope_2d(4, 8, torch.device("cpu"))
    ref2 = torch.cat(
        [_rope_by_halves(x[..., :4], cos2[:, :4], sin2[:, :4]), _rope_by_halves(x[..., 4:], cos2[:, 4:], sin2[:, 4:])],
        -1,
    )
    got2 = apply_rope_2d(x, cos2, sin2)
    assert torch.equal(got2, ref2)
    assert torch.equal(*(torch.autograd.grad(y.float().square().sum(), x)[0] for y in (got2, ref2)))
