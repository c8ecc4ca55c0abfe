"""Block-specific oracles for ``lstm_attn`` (the hand-written LSTM is an LSTM; the read-out reads the
current frame's memory) and ``frame_stack`` (finite receptive field of exactly k frames).

    OMP_NUM_THREADS=1 pytest tests/test_blocks_lstm.py
"""

import pytest
import torch
from torch import nn

from blocks.frame_stack import FrameStack
from blocks.lstm_attn import LSTMAttention, LSTMCell

B, T, N, D, HEADS = 2, 7, 5, 16, 4


def perturbed(block: nn.Module) -> nn.Module:
    """Random non-zero weights everywhere (the output projection starts at zero)."""
    with torch.no_grad():
        for p in block.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return block.eval()


def inputs(t: int = T, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, t, N, D, generator=g), torch.randn(B, t, D, generator=g)


# --------------------------------------------------------------------------------------------
#                                   lstm_attn
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dim_in, hidden", [(6, 6), (6, 9)])
def test_lstm_attn_cell_matches_torch_lstm(dim_in, hidden):
    cell = perturbed(LSTMCell(dim_in, hidden))
    ref = nn.LSTM(dim_in, hidden, batch_first=True)
    with torch.no_grad():  # same gate order (i, f, g, o); our single bias goes into bias_ih
        ref.weight_ih_l0.copy_(cell.to_gates.weight[:, :dim_in])
        ref.weight_hh_l0.copy_(cell.to_gates.weight[:, dim_in:])
        ref.bias_ih_l0.copy_(cell.to_gates.bias)
        ref.bias_hh_l0.zero_()
    x, h0, c0 = torch.randn(3, 11, dim_in), torch.randn(3, hidden), torch.randn(3, hidden)
    with torch.no_grad():
        hs, h, c = cell.scan(x, h0, c0)
        hs_ref, (h_ref, c_ref) = ref(x, (h0[None], c0[None]))
    torch.testing.assert_close(hs, hs_ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(h, h_ref[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(c, c_ref[0], atol=1e-5, rtol=0)


def test_lstm_attn_cell_scan_equals_steps():
    cell = perturbed(LSTMCell(6, 8))
    x, h, c = torch.randn(3, 9, 6), torch.randn(3, 8), torch.randn(3, 8)
    with torch.no_grad():
        hs, h_end, c_end = cell.scan(x, h, c)
        for i in range(x.shape[1]):
            h, c = cell.step(x[:, i], h, c)
            torch.testing.assert_close(hs[:, i], h, atol=1e-6, rtol=0)
    torch.testing.assert_close((h_end, c_end), (h, c), atol=1e-6, rtol=0)


def test_lstm_attn_cell_forget_bias_is_one():
    bias = LSTMCell(6, 8).to_gates.bias
    assert torch.all(bias[8:16] == 1) and torch.all(bias[:8] == 0) and torch.all(bias[16:] == 0)


def test_lstm_attn_forward_equals_steps_with_hidden_kwarg():
    block = perturbed(LSTMAttention(D, heads=HEADS, hidden=24))
    x, a = inputs()
    with torch.no_grad():
        y, s = block(x, None, a)
        state, ys = block.init_state(B, N, x.device, x.dtype), []
        for i in range(T):
            yi, state = block.step(x[:, i], state, a[:, i])
            ys.append(yi)
    torch.testing.assert_close(torch.stack(ys, 1), y, atol=1e-5, rtol=1e-5)
    assert s["h"].shape == s["c"].shape == (B * N, 24)
    torch.testing.assert_close(state, s, atol=1e-5, rtol=1e-5)


def test_lstm_attn_readout_reads_only_current_frame_memory():
    block = perturbed(LSTMAttention(D, heads=HEADS))
    u = torch.randn(B, T, N, D)
    hs = torch.tanh(torch.randn(B, T, N, D))
    with torch.no_grad():
        y = block.readout(u, hs)
        j = 3
        other = hs.clone()
        other[:, [k for k in range(T) if k != j]] += 1.0  # every frame's memory but j's
        torch.testing.assert_close(block.readout(u, other)[:, j], y[:, j], atol=1e-6, rtol=0)
        # memory at one position of frame j is read by the tokens at *other* positions too
        mine = hs.clone()
        mine[:, j, 0] += 1.0
        y2 = block.readout(u, mine)
    assert not torch.allclose(y2[:, j, 1:], y[:, j, 1:])
    torch.testing.assert_close(y2[:, :j], y[:, :j], atol=1e-6, rtol=0)


def test_lstm_attn_state_carries_memory():
    """The state is the memory: a different past gives a different output for the same frame."""
    block = perturbed(LSTMAttention(D, heads=HEADS))
    x, a = inputs()
    with torch.no_grad():
        _, s1 = block(x[:, :4], None, a[:, :4])
        _, s2 = block(x[:, :4] + 1.0, None, a[:, :4])
        y1, _ = block(x[:, 4:], s1, a[:, 4:])
        y2, _ = block(x[:, 4:], s2, a[:, 4:])
    assert not torch.allclose(y1, y2)


# --------------------------------------------------------------------------------------------
#                                   frame_stack
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 3])
def test_frame_stack_receptive_field_is_k_frames(k):
    block = perturbed(FrameStack(D, heads=HEADS, k=k))
    x, a = inputs(t=8)
    t = 6  # the frame whose output we watch; it sees frames t-k+1 .. t
    with torch.no_grad():
        y, _ = block(x, None, a)
        old = x.clone()
        old[:, : t - k + 1] += torch.randn_like(old[:, : t - k + 1])
        torch.testing.assert_close(block(old, None, a)[0][:, t], y[:, t], atol=1e-6, rtol=0)
        edge = x.clone()
        edge[:, t - k + 1] += 1.0
        assert not torch.allclose(block(edge, None, a)[0][:, t], y[:, t])


def test_frame_stack_receptive_field_across_calls():
    """Same finite field when the older frames arrive through the carried state."""
    k = 3
    block = perturbed(FrameStack(D, heads=HEADS, k=k))
    x, a = inputs(t=8)
    with torch.no_grad():
        _, s = block(x[:, :5], None, a[:, :5])
        y, _ = block(x[:, 5:], s, a[:, 5:])  # frame 6 is y[:, 1]; it sees frames 4, 5, 6
        old = x.clone()
        old[:, :4] += 1.0
        _, s_old = block(old[:, :5], None, a[:, :5])
        torch.testing.assert_close(block(x[:, 5:], s_old, a[:, 5:])[0][:, 1], y[:, 1], atol=1e-6, rtol=0)
        edge = x.clone()
        edge[:, 4] += 1.0
        _, s_edge = block(edge[:, :5], None, a[:, :5])
        assert not torch.allclose(block(x[:, 5:], s_edge, a[:, 5:])[0][:, 1], y[:, 1])


def test_frame_stack_first_frames_see_zeros():
    k = 4
    block = perturbed(FrameStack(D, heads=HEADS, k=k))
    x, a = inputs(t=2)
    with torch.no_grad():
        y, s = block(x, None, a)
        u = x + a[:, :, None]
        zeros = torch.zeros(B, k - 2, N, D)
        stack = torch.cat([zeros, u], 1).permute(0, 2, 1, 3).reshape(B, N, k * D)  # oldest first
        expected = block.to_out(block.act(block.to_hidden(stack)))
    torch.testing.assert_close(y[:, 1], expected, atol=1e-6, rtol=0)
    assert s["past"].shape == (B, k - 1, N, D) and int(s["t0"]) == 2
