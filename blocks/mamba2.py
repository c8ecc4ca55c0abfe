"""``mamba2``: a Mamba2 layer (SSD scan) run along time per spatial token; constant-size state."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from rad_bench.block import MemoryBlock, State
from rad_bench.ops.ssd import _heads, causal_conv1d_ref, depthwise_conv1d, ssd, ssd_impl
from rad_bench.registry import register_block


class GatedRMSNorm(nn.Module):
    """``RMSNorm(y * silu(z))`` per group of channels (Mamba2's ``RMSNormGated``, norm after gate).

    Normalising per group keeps heads that share ``B, C`` (one group) independent of other groups.
    """

    def __init__(self, dim: int, groups: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.groups, self.eps = groups, eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, y: Tensor, z: Tensor) -> Tensor:
        y = rearrange(y * F.silu(z), "... (g e) -> ... g e", g=self.groups)
        y = y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + self.eps)
        return rearrange(y, "... g e -> ... (g e)") * self.weight


@register_block("mamba2")
class Mamba2Block(MemoryBlock):
    """Per spatial token, a Mamba2 layer (Dao & Gu 2024, https://arxiv.org/abs/2405.21060) over time.

    ``in_proj -> (z, xBC, dt)``; a short causal depthwise conv + SiLU on ``xBC``; the SSD scan with
    ``A = -exp(A_log)`` (one scalar per head), ``dt = softplus(dt + dt_bias)`` and a ``D`` skip; gated
    RMSNorm ``norm(y * silu(z))``; zero-initialised ``out_proj``. The action embedding is added to the
    input before ``in_proj`` (broadcast over tokens): RAD feeds the action to the memory block
    directly, so it can drive what the state writes and forgets. Width ``e = expand * dim`` splits
    into ``h = e // headdim`` heads (``headdim = e // heads`` by default) sharing ``ngroups`` ``B, C``.

    State (constant size): ``ssm: (b n, h, headdim, d_state)`` float32 (the scan accumulates in
    float32, as the kernel does) and ``conv: (b n, e + 2 ngroups d_state, d_conv - 1)``, the last inputs
    of the conv. Cost per frame: O(n d e) projections + O(n e d_state) scan, independent of history.
    """

    state_growth = "constant"
    state_knob = "d_state"

    @classmethod
    def carried_bytes(
        cls,
        dim: int,
        heads: int,
        tokens: int,
        d_state: int = 16,
        expand: int = 2,
        d_conv: int = 4,
        ngroups: int = 1,
        **kwargs: Any,
    ) -> int:
        inner = expand * dim  # ssm: (heads x headdim = inner) x d_state; conv: the last d_conv - 1 inputs
        return 4 * tokens * (inner * d_state + (inner + 2 * ngroups * d_state) * (d_conv - 1))

    def __init__(
        self,
        dim: int,
        *,
        heads: int = 4,
        impl: str = "auto",
        d_state: int = 16,
        expand: int = 2,
        d_conv: int = 4,
        headdim: int | None = None,
        chunk_size: int = 16,
        ngroups: int = 1,
    ) -> None:
        super().__init__(dim, heads=heads, impl=impl)
        sizes = {"d_state": d_state, "expand": expand, "d_conv": d_conv, "chunk_size": chunk_size, "ngroups": ngroups}
        if bad := {k: v for k, v in sizes.items() if v < 1}:
            raise ValueError(f"{', '.join(f'{k}={v}' for k, v in bad.items())}: sizes must be at least 1")
        self.d_inner = expand * dim
        self.headdim = headdim or self.d_inner // heads
        if self.d_inner % self.headdim:
            raise ValueError(f"headdim={self.headdim} must divide expand * dim = {self.d_inner}")
        self.nheads = self.d_inner // self.headdim
        if self.nheads % ngroups:
            raise ValueError(f"ngroups={ngroups} must divide the number of heads {self.nheads}")
        self.d_state, self.d_conv, self.ngroups = d_state, d_conv, ngroups
        self.chunk_size = chunk_size
        self.conv_dim = self.d_inner + 2 * ngroups * d_state  # x, B, C all go through the conv
        self.in_proj = nn.Linear(dim, self.d_inner + self.conv_dim + self.nheads, bias=False)
        self.conv1d = nn.Conv1d(self.conv_dim, self.conv_dim, d_conv, groups=self.conv_dim)
        self.dt_bias = nn.Parameter(torch.empty(self.nheads))
        self.A_log = nn.Parameter(torch.empty(self.nheads))
        self.D = nn.Parameter(torch.empty(self.nheads))
        self.norm = GatedRMSNorm(self.d_inner, ngroups)
        self.out_proj = nn.Linear(self.d_inner, dim, bias=False)
        self.reset_parameters()

    def reset_parameters(self, dt_min: float = 1e-3, dt_max: float = 1e-1, dt_floor: float = 1e-4) -> None:
        """Mamba2's SSM init; linears and conv keep PyTorch defaults, ``out_proj`` is zeroed."""
        with torch.no_grad():
            # dt log-uniform in [dt_min, dt_max], stored as its inverse softplus so softplus(dt_bias) = dt
            dt = torch.exp(torch.rand(self.nheads) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
            dt = dt.clamp(min=dt_floor)
            self.dt_bias.copy_(dt + torch.log(-torch.expm1(-dt)))
            # per-head decay rate -A in [1, 16]: a spread of memory lengths from the start
            self.A_log.copy_(torch.empty(self.nheads).uniform_(1, 16).log())
            self.D.fill_(1.0)
        nn.init.zeros_(self.out_proj.weight)

    @property
    def impl(self) -> str:
        """``kernel`` (mamba_ssm Triton SSD) or ``ref`` (pure PyTorch chunked SSD) on this device.

        Resolved by :func:`rad_bench.ops.resolve_impl` from the ``impl`` the block was built with
        (``RAD_BENCH_IMPL`` / a test override win).
        """
        return ssd_impl(self.in_proj.weight.device, self.requested_impl)

    def init_state(self, batch: int, tokens: int, device: torch.device, dtype: torch.dtype) -> State:
        bn = batch * tokens
        ssm = torch.zeros(bn, self.nheads, self.headdim, self.d_state, device=device, dtype=torch.float32)
        return {
            "ssm": ssm,
            "conv": torch.zeros(bn, self.conv_dim, self.d_conv - 1, device=device, dtype=dtype),
        }

    def forward(self, x: Tensor, state: State, action: Tensor) -> tuple[Tensor, State]:
        b, t, n, d = x.shape
        if state is None:
            state = self.init_state(b, n, x.device, x.dtype)
        z, xbc, dt = self._in_proj(x, action)
        xbc, conv = causal_conv1d_ref(
            xbc.transpose(1, 2), self.conv1d.weight[:, 0], self.conv1d.bias, state["conv"]
        )  # (b n, conv_dim, t), SiLU applied
        y, ssm = self._scan(*self._ssm_inputs(xbc.transpose(1, 2), dt), state["ssm"])  # (b n, t, e)
        y = self.out_proj(self.norm(y, z))
        return rearrange(y, "(b n) t d -> b t n d", b=b), {"ssm": ssm, "conv": conv}

    def _in_proj(self, x: Tensor, action: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(z, xBC, dt)`` per token row ``(b n)``: the scan runs along t for each spatial token."""
        u = rearrange(x + action[:, :, None], "b t n d -> (b n) t d")
        z, xbc, dt = self.in_proj(u).split([self.d_inner, self.conv_dim, self.nheads], dim=-1)
        return z, xbc, dt

    def _scan(self, xs: Tensor, B: Tensor, C: Tensor, dt: Tensor, A: Tensor, ssm: Tensor) -> tuple[Tensor, Tensor]:
        """The SSD scan on :meth:`_ssm_inputs` -> ``y: (B, t, e)`` and the new SSM state."""
        y, ssm = ssd(xs, dt, A, B, C, self.chunk_size, ssm, requested=self.requested_impl)
        y = y + xs * self.D[:, None]  # D skip connection (paper §7, as in Mamba)
        return rearrange(y, "b t h p -> b t (h p)"), ssm

    def _ssm_inputs(self, xbc: Tensor, dt: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        gs = self.ngroups * self.d_state
        xs, B, C = xbc.split([self.d_inner, gs, gs], dim=-1)
        xs = rearrange(xs, "b t (h p) -> b t h p", p=self.headdim)
        B, C = (rearrange(m, "b t (g s) -> b t g s", g=self.ngroups) for m in (B, C))
        dt = F.softplus(dt.float() + self.dt_bias.float())  # positive step size per head
        A = -torch.exp(self.A_log.float())  # negative, so exp(dt A) in (0, 1): a stable decay
        return xs, B, C, dt, A

    # ---------------------------------------------------------------- frame-wise training (prefetch)

    def prefetch(self, x: Tensor, state: State, action: Tensor) -> tuple[Tensor, State, dict[str, Tensor]]:
        """``forward`` over the clean frames, keeping what :meth:`read` needs to evaluate a noisy frame
        from the state entering any frame without materialising those states: the conv inputs, the
        cumulative log-decay ``cum_t = sum_(s<=t) dt_s A`` and the scan's ``dt x`` and ``B`` terms."""
        b, t, n, d = x.shape
        if state is None:
            state = self.init_state(b, n, x.device, x.dtype)
        z, xbc_raw, dt_raw = self._in_proj(x, action)
        xbc, conv = causal_conv1d_ref(
            xbc_raw.transpose(1, 2), self.conv1d.weight[:, 0], self.conv1d.bias, state["conv"]
        )
        xs, B, C, dt, A = self._ssm_inputs(xbc.transpose(1, 2), dt_raw)
        y, ssm = self._scan(xs, B, C, dt, A, state["ssm"])
        y = rearrange(self.out_proj(self.norm(y, z)), "(b n) t d -> b t n d", b=b)
        ctx = {
            "conv_in": torch.cat([state["conv"].to(xbc_raw.dtype), xbc_raw.transpose(1, 2)], dim=-1),
            "cum": torch.cumsum(dt * A, dim=1),  # (B, t, h)
            "xdt": xs.float() * dt[..., None],  # (B, t, h, p)
            "B": _heads(B.float(), self.nheads),  # (B, t, h, N)
            "ssm0": state["ssm"].float(),  # (B, h, p, N)
        }
        return y, {"ssm": ssm, "conv": conv}, ctx

    def read(self, x: Tensor, ctx: dict[str, Tensor], action: Tensor) -> Tensor:
        """Noisy frame j, one step from the clean state ``S_(j-1)`` (all frames at once):

            y_j = exp(dt_j A) C_j . S_(j-1) + dt_j (C_j . B_j) x_j + D x_j,
            C_j . S_(j-1) = exp(cum_(j-1)) C_j . S_0 + sum_(s<j) exp(cum_(j-1) - cum_s) (C_j . B_s) dt_s x_s,

        the SSD "attention" form with the noisy frame's ``C`` as query over the clean ``B``/``x``.
        The conv of frame j sees the ``d_conv - 1`` clean inputs before it and its own."""
        b, t = x.shape[:2]
        z, xbc_raw, dt_raw = self._in_proj(x, action)
        w, k = self.conv1d.weight[:, 0], self.d_conv
        past = depthwise_conv1d(ctx["conv_in"][..., : t + k - 2], w[:, : k - 1])  # taps over clean inputs j..j+k-2
        conv = past + xbc_raw.transpose(1, 2) * w[:, k - 1, None]
        xbc = F.silu(conv + self.conv1d.bias[:, None]).transpose(1, 2)
        xs, B_own, C, dt, A = self._ssm_inputs(xbc, dt_raw)
        C, B_own = _heads(C.float(), self.nheads), _heads(B_own.float(), self.nheads)
        cum = ctx["cum"]
        cum_prev = F.pad(cum[:, :-1], (0, 0, 1, 0))  # cum_(j-1), with cum_(-1) = 0
        j = torch.arange(t, device=x.device)
        earlier = (j[None, :] < j[:, None])[None, :, :, None]  # (1, j, s, 1): s < j
        decay = torch.exp((cum_prev[:, :, None] - cum[:, None]).masked_fill(~earlier, float("-inf")))
        scores = torch.einsum("bjhn,bshn->bjsh", C, ctx["B"]) * decay
        hist = torch.einsum("bjsh,bshp->bjhp", scores, ctx["xdt"])
        hist = hist + cum_prev.exp()[..., None] * torch.einsum("bjhn,bhpn->bjhp", C, ctx["ssm0"])
        own = (C * B_own).sum(-1) * dt  # (B, t, h)
        y = (dt * A).exp()[..., None] * hist + own[..., None] * xs.float()
        y = y + xs * self.D[:, None]
        y = self.out_proj(self.norm(rearrange(y, "b t h p -> b t (h p)"), z))
        return rearrange(y, "(b n) t d -> b t n d", b=b)
