"""Building blocks of the video DiT: embedders, RoPE, attention, MLP, adaLN helpers.

Shapes use one alphabet everywhere: ``b`` batch, ``t`` frames, ``n`` tokens per frame, ``d`` width,
``h`` heads, ``c`` pixel channels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    # adaLN: shift/scale are per frame (b, t, 1, d) and broadcast over the n tokens of the frame
    return x * (1 + scale) + shift


# --------------------------------------------------------------------------------------------
#                                   Embedders
# --------------------------------------------------------------------------------------------


class TimestepEmbedder(nn.Module):
    """Per-frame diffusion level -> vector (DiT's sinusoidal embedding + MLP)."""

    def __init__(self, dim: int, freq_dim: int = 256) -> None:
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    @staticmethod
    def sinusoidal(levels: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=levels.device) / half)
        args = levels.float()[..., None] * freqs  # (..., half)
        return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)

    def forward(self, levels: Tensor) -> Tensor:
        return self.mlp(self.sinusoidal(levels, self.freq_dim).to(self.mlp[0].weight.dtype))  # (b, t, d)


# --------------------------------------------------------------------------------------------
#                                   Rotary position embedding
# --------------------------------------------------------------------------------------------


def rope_angles(pos: Tensor, dim: int, base: float = 10000.0) -> tuple[Tensor, Tensor]:
    """cos/sin tables for integer positions ``pos: (L,)`` over ``dim`` (even) channels -> (L, dim)."""
    inv = 1.0 / base ** (torch.arange(0, dim, 2, device=pos.device, dtype=torch.float32) / dim)
    ang = pos.float()[:, None] * inv  # (L, dim/2)
    ang = torch.cat([ang, ang], dim=-1)
    return ang.cos(), ang.sin()


def _rotate(x: Tensor, cos: Tensor, sin: Tensor, groups: int) -> Tensor:
    """``x * cos + rot(x) * sin`` where, in each of ``groups`` equal slices of the last dim, ``rot`` maps the halves
    ``(x1, x2)`` to ``(-x2, x1)``. The halves swap in one concatenation of two views (a ``flip`` of the view is
    slower on CPU) and the sign lands on ``sin``: ``(-x2) * s`` and ``x2 * (-s)`` are the same float, so this equals
    rotating each slice by chunk, negation and concatenation bit for bit, in fewer and cheaper kernels."""
    shape = (groups, 2, x.shape[-1] // (2 * groups))
    v, s = x.unflatten(-1, shape), sin.unflatten(-1, shape)
    swapped = torch.cat([v[..., 1:, :], v[..., :1, :]], dim=-2).flatten(-3)
    signed = torch.cat([-s[..., :1, :], s[..., 1:, :]], dim=-2).flatten(-3)
    return (x.float() * cos + swapped.float() * signed).to(x.dtype)


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate pairs (x_i, x_{i+dim/2}) of the last dim; cos/sin broadcast against ``x``."""
    return _rotate(x, cos, sin, groups=1)


def rope_2d(side: int, head_dim: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Axial 2-D RoPE for a ``side x side`` token grid: half the channels rotate with the row,
    half with the column. Returns cos/sin of shape (n, head_dim)."""
    half = head_dim // 2
    idx = torch.arange(side, device=device)
    rows, cols = torch.meshgrid(idx, idx, indexing="ij")
    cr, sr = rope_angles(rows.flatten(), half)
    cc, sc = rope_angles(cols.flatten(), half)
    return torch.cat([cr, cc], -1), torch.cat([sr, sc], -1)


def apply_rope_2d(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """:func:`apply_rope` on each half of the last dim (rows, then columns) with that half of the tables."""
    return _rotate(x, cos, sin, groups=2)


# --------------------------------------------------------------------------------------------
#                                   Attention and MLP
# --------------------------------------------------------------------------------------------


class Attention(nn.Module):
    """Multi-head attention with fused qkv; positions are applied by the caller through ``rope``.

    Uses PyTorch SDPA (flash/memory-efficient kernels on CUDA, a fused CPU kernel otherwise).
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        assert dim % heads == 0, f"dim {dim} must be divisible by heads {heads}"
        self.heads = heads
        self.to_qkv = nn.Linear(dim, 3 * dim)
        self.to_out = nn.Linear(dim, dim)

    def qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        q, k, v = rearrange(self.to_qkv(x), "s l (three h e) -> three s h l e", three=3, h=self.heads)
        return q, k, v

    def attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.to_out(rearrange(y, "s h l e -> s l (h e)"))


class Mlp(nn.Module):
    def __init__(self, dim: int, ratio: float = 4.0, hidden: int | None = None) -> None:
        super().__init__()
        hidden = hidden or int(dim * ratio)
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def temporal_mask(q_pos: Tensor, k_pos: Tensor, window: int | None, chunked: bool = False) -> Tensor:
    """Boolean (Lq, Lk) mask: query at frame p sees keys at frames in ``(p - window, p]``
    (all of ``<= p`` when ``window`` is None). ``chunked``: non-overlapping chunks of ``window``
    frames instead, causal inside a chunk and blind to every earlier chunk."""
    diff = q_pos[:, None] - k_pos[None, :]
    mask = diff >= 0
    if window is not None:
        mask &= diff < window
        if chunked:
            mask &= (q_pos[:, None] // window) == (k_pos[None, :] // window)
    return mask
