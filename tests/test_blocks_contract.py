"""Contract tests run for every registered memory block (new blocks are enrolled automatically).

pytest tests/test_blocks_contract.py
"""

import pytest
import torch

from rad_bench.block import MemoryBlock, state_bytes
from rad_bench.registry import get_block, list_blocks

B, T, N, D, HEADS = 2, 9, 5, 32, 4


def make(name: str) -> MemoryBlock:
    torch.manual_seed(0)
    block = get_block(name)(D, heads=HEADS)
    # the output projection is zero-initialised; perturb every weight so outputs are non-trivial
    with torch.no_grad():
        for p in block.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return block.eval()


def inputs(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, T, N, D, generator=g), torch.randn(B, T, D, generator=g)


@pytest.mark.parametrize("name", list_blocks())
def test_shapes_and_finite(name):
    block = make(name)
    x, a = inputs()
    y, state = block(x, None, a)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert torch.isfinite(y).all()
    assert block.state_growth in ("constant", "linear")
    assert state_bytes(state) >= 0


@pytest.mark.parametrize("name", list_blocks())
def test_zero_init_output(name):
    block = get_block(name)(D, heads=HEADS)
    x, a = inputs()
    y, _ = block(x, None, a)
    assert torch.all(y == 0), "output projection must be zero-initialised"


@pytest.mark.parametrize("name", list_blocks())
def test_causal(name):
    block = make(name)
    x, a = inputs()
    y, _ = block(x, None, a)
    j = 5
    x2, a2 = x.clone(), a.clone()
    x2[:, j:] += torch.randn_like(x2[:, j:])
    a2[:, j:] += 1.0
    y2, _ = block(x2, None, a2)
    torch.testing.assert_close(y2[:, :j], y[:, :j], atol=1e-6, rtol=0)
    if block.reads_history:  # a block that adds nothing (none) declares that it reads no history
        assert not torch.allclose(y2[:, j:], y[:, j:])


@pytest.mark.parametrize("name", list_blocks())
@pytest.mark.parametrize("split", [1, 4, 7])
def test_parallel_equals_chunked_equals_steps(name, split):
    block = make(name)
    x, a = inputs()
    with torch.no_grad():
        y, _ = block(x, None, a)
        y1, s = block(x[:, :split], None, a[:, :split])
        y2, _ = block(x[:, split:], s, a[:, split:])
        torch.testing.assert_close(torch.cat([y1, y2], 1), y, atol=1e-5, rtol=1e-5)
        state, ys = block.init_state(B, N, x.device, x.dtype), []
        for i in range(T):
            yi, state = block.step(x[:, i], state, a[:, i])
            ys.append(yi)
        torch.testing.assert_close(torch.stack(ys, 1), y, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", list_blocks())
def test_state_is_not_mutated(name):
    block = make(name)
    x, a = inputs()
    with torch.no_grad():
        _, s = block(x[:, :4], None, a[:, :4])
        snapshot = {k: v.clone() for k, v in (s or {}).items()}
        block(x[:, 4:], s, a[:, 4:])
    for k, v in snapshot.items():
        assert torch.equal(s[k], v), f"state['{k}'] was changed in place"


@pytest.mark.parametrize("name", list_blocks())
def test_state_growth_declared_honestly(name):
    block = make(name)
    x, a = inputs()
    with torch.no_grad():
        _, s4 = block(x[:, :4], None, a[:, :4])
        _, s8 = block(x[:, :8], None, a[:, :8])
    grows = state_bytes(s8) > state_bytes(s4)
    assert grows == (block.state_growth == "linear")


@pytest.mark.parametrize("name", list_blocks())
@pytest.mark.parametrize("with_state", [False, True])
def test_prefetch_and_read_match_the_definition(name, with_state):
    """``prefetch`` == ``forward`` on clean frames; ``read`` == each noisy frame run by ``forward``
    from the state the clean frames before it leave (the base class's frame-by-frame oracle)."""
    block = make(name)
    x, a = inputs()
    noisy, a_noisy = inputs(seed=2)[0], a
    x3, a3 = inputs(seed=3)
    state = block(x3, None, a3)[1] if with_state else None  # a state from an earlier clip segment
    y_ref, s_ref = block(x, state, a)
    y, s, ctx = block.prefetch(x, state, a)
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=1e-5)
    for k in s_ref or {}:
        torch.testing.assert_close(s[k], s_ref[k], atol=1e-5, rtol=1e-5)
    want = MemoryBlock.read(block, noisy, MemoryBlock.prefetch(block, x, state, a)[2], a_noisy)
    torch.testing.assert_close(block.read(noisy, ctx, a_noisy), want, atol=1e-5, rtol=1e-5)
    if block.reads_history:  # the read depends on the clean history, not only on the noisy frame
        x2 = x.clone()
        x2[:, -2] += 1.0  # the clean frame just before the last one
        assert not torch.allclose(block.read(noisy, block.prefetch(x2, state, a)[2], a_noisy)[:, -1], want[:, -1])
