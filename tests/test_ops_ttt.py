"""TTT op and block: dual form == primal oracle, call splits are exact, the mlp block obeys the contract.

OMP_NUM_THREADS=1 pytest tests/test_ops_ttt.py
"""

import pytest
import torch

from rad_bench.ops.ttt import INNERS, inner_forward, ttt_dual, ttt_init_state, ttt_primal_ref
from rad_bench.registry import get_block

B, H, E = 2, 2, 4
TOL = {"atol": 1e-4, "rtol": 1e-4}


def make_inputs(t: int, inner: str, seed: int = 0):
    """q, k, v, eta, ln_w, ln_b and a non-trivial initial state (random W0, not zeros)."""
    g = torch.Generator().manual_seed(seed)
    rnd = lambda *s, scale=1.0: scale * torch.randn(*s, generator=g)  # noqa: E731
    q, k, v = (rnd(B, H, t, E) for _ in range(3))
    eta = 0.5 * torch.rand(B, H, t, generator=g)
    ln_w, ln_b = 1 + rnd(H, E, scale=0.1), rnd(H, E, scale=0.1)
    f = E if inner == "linear" else 4 * E
    w = {"w1": rnd(B, H, E, f, scale=0.3), "b1": rnd(B, H, 1, f, scale=0.1)}
    if inner == "mlp":
        w.update(w2=rnd(B, H, f, E, scale=0.3), b2=rnd(B, H, 1, E, scale=0.1))
    return (q, k, v, eta, ln_w, ln_b), ttt_init_state(w)


def assert_states_close(s1, s2):
    assert s1.keys() == s2.keys()
    for key in s1:
        torch.testing.assert_close(s1[key], s2[key], **TOL, msg=f"state[{key!r}]")


@pytest.mark.parametrize("inner", INNERS)
@pytest.mark.parametrize("t", [1, 5, 8, 13])
@pytest.mark.parametrize("mini_batch", [1, 2, 4])
def test_dual_equals_primal(inner, t, mini_batch):
    args, state = make_inputs(t, inner)
    z_ref, s_ref = ttt_primal_ref(*args, state, mini_batch, inner)
    z, s = ttt_dual(*args, state, mini_batch, inner)
    torch.testing.assert_close(z, z_ref, **TOL)
    assert_states_close(s, s_ref)
    assert int(s["pos"]) == t % mini_batch


@pytest.mark.parametrize("inner", INNERS)
def test_primal_matches_definition(inner):
    """Independent check of the oracle's semantics: with one mini-batch covering the sequence every
    gradient is at W0 and z_t = f(q_t; W0 - sum_{s<=t} eta_s grad l_s(W0))."""
    t = 5
    (q, k, v, eta, ln_w, ln_b), state = make_inputs(t, inner, seed=3)
    w0 = {n: state[n].clone().requires_grad_() for n in ("w1", "b1", "w2", "b2") if n in state}
    upd = {n: torch.zeros_like(w) for n, w in w0.items()}
    z, _ = ttt_primal_ref(q, k, v, eta, ln_w, ln_b, state, t, inner)
    for s in range(t):
        loss = 0.5 * (inner_forward(k[:, :, s : s + 1], w0, ln_w, ln_b) - v[:, :, s : s + 1]).square().sum()
        for n, gr in zip(w0, torch.autograd.grad(loss, list(w0.values())), strict=True):
            upd[n] = upd[n] + eta[:, :, s, None, None] * gr
        w_s = {n: (w0[n] - upd[n]).detach() for n in w0}
        z_s = inner_forward(q[:, :, s : s + 1], w_s, ln_w, ln_b)[:, :, 0]
        torch.testing.assert_close(z[:, :, s], z_s, **TOL)


@pytest.mark.parametrize("inner", INNERS)
@pytest.mark.parametrize("split", [3, 4, 6])  # inside, on and inside a mini-batch of 4
@pytest.mark.parametrize("op", [ttt_dual, ttt_primal_ref])
def test_split_calls_equal_one_call(inner, split, op):
    t, mini_batch = 11, 4
    args, state = make_inputs(t, inner, seed=1)
    z, s = op(*args, state, mini_batch, inner)
    first = [a[:, :, :split] if a.dim() > 2 else a for a in args]
    rest = [a[:, :, split:] if a.dim() > 2 else a for a in args]
    z1, s1 = op(*first, state, mini_batch, inner)
    z2, s2 = op(*rest, s1, mini_batch, inner)
    torch.testing.assert_close(torch.cat([z1, z2], dim=2), z, **TOL)
    assert_states_close(s2, s)


@pytest.mark.parametrize("inner", INNERS)
def test_dual_gradients_match_primal(inner):
    """The outer loop trains through the dual form: its gradients must match the oracle's too."""
    t, mini_batch = 6, 4
    args, state = make_inputs(t, inner, seed=2)
    grads = []
    for op in (ttt_primal_ref, ttt_dual):
        leaves = [a.clone().requires_grad_() for a in args]
        z, s = op(*leaves, state, mini_batch, inner)
        (z.square().sum() + s["w1"].sum()).backward()
        grads.append([a.grad for a in leaves])
    for g_ref, g in zip(*grads, strict=True):
        torch.testing.assert_close(g, g_ref, **TOL)


def test_mlp_block_forward_equals_steps():
    torch.manual_seed(0)
    b, t, n, d = 2, 7, 3, 16
    block = get_block("ttt")(d, heads=2, inner="mlp", mini_batch=3).eval()
    with torch.no_grad():
        for p in block.parameters():
            p.add_(0.1 * torch.randn_like(p))
        x, a = torch.randn(b, t, n, d), torch.randn(b, t, d)
        y, _ = block(x, None, a)
        state, ys = block.init_state(b, n, x.device, x.dtype), []
        for i in range(t):
            yi, state = block.step(x[:, i], state, a[:, i])
            ys.append(yi)
    assert y.abs().max() > 0
    torch.testing.assert_close(torch.stack(ys, 1), y, atol=1e-5, rtol=1e-5)
    assert int(state["pos"]) == t % 3


def test_invalid_inner_raises():
    with pytest.raises(ValueError, match="inner"):
        get_block("ttt")(16, heads=2, inner="transformer")


@pytest.mark.parametrize("inner", ["linear", "mlp"])
@pytest.mark.parametrize("mini_batch", [1, 3, 16])
def test_frame_read_equals_one_step_from_each_clean_state(inner, mini_batch):
    """ttt_dual_read (via the block's read) == stepping the noisy frame from each clean state."""
    from rad_bench.block import MemoryBlock

    torch.manual_seed(0)
    block = get_block("ttt")(16, heads=2, inner=inner, mini_batch=mini_batch)
    with torch.no_grad():
        for p in block.parameters():
            p.add_(0.1 * torch.randn_like(p))
    g = torch.Generator().manual_seed(1)
    x, noisy, a = torch.randn(2, 7, 3, 16, generator=g), torch.randn(2, 7, 3, 16, generator=g), torch.randn(2, 7, 16)
    state = block(torch.randn(2, 2, 3, 16, generator=g), None, torch.randn(2, 2, 16))[1]  # start mid-mini-batch
    want = MemoryBlock.read(block, noisy, MemoryBlock.prefetch(block, x, state, a)[2], a)
    got = block.read(noisy, block.prefetch(x, state, a)[2], a)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
