"""The LSTM op pair (rad_bench.ops.lstm): the fused scan equals the step-by-step oracle, values and
gradients, from any initial state.

pytest tests/test_ops_lstm.py
"""

import pytest
import torch

from rad_bench.ops.lstm import lstm_ref, lstm_scan


@pytest.mark.parametrize("dim_in, hidden, length", [(6, 6, 9), (5, 8, 1)])
def test_scan_equals_ref(dim_in, hidden, length):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, length, dim_in, generator=g, dtype=torch.float64)
    h, c = (torch.randn(3, hidden, generator=g, dtype=torch.float64) for _ in "hc")
    w = (0.5 * torch.randn(4 * hidden, dim_in + hidden, generator=g, dtype=torch.float64)).requires_grad_()
    b = torch.randn(4 * hidden, generator=g, dtype=torch.float64).requires_grad_()
    outs = [f(x, h, c, w, b) for f in (lstm_scan, lstm_ref)]
    for got, want in zip(*outs):
        torch.testing.assert_close(got, want)
    grads = [torch.autograd.grad(sum(o.sum() for o in out), (w, b)) for out in outs]
    for got, want in zip(*grads):
        torch.testing.assert_close(got, want)


def test_scan_hands_the_fused_kernel_contiguous_weights(monkeypatch):
    # cuDNN (the CUDA path of torch.lstm) refuses strided weight views; the CPU kernel accepts them,
    # so check what the scan passes, and that the gradient still reaches the fused weight
    seen = []
    real = torch.lstm

    def spy(x, hx, params, *args):
        seen.extend(p.is_contiguous() for p in params)
        return real(x, hx, params, *args)

    monkeypatch.setattr(torch, "lstm", spy)
    w = torch.randn(16, 9, requires_grad=True)
    hs, _, _ = lstm_scan(torch.randn(2, 3, 5), torch.zeros(2, 4), torch.zeros(2, 4), w, torch.zeros(16))
    hs.sum().backward()
    assert seen and all(seen)
    assert w.grad is not None and w.grad.abs().sum() > 0
