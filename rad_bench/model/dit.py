"""The shared video DiT: one backbone, one memory-block slot per layer.

Each layer holds (RAD, Sec. 3; Oasis-style factorised attention):

    x += gate * SpatialAttn(adaLN(x))      tokens of one frame, 2-D RoPE, bidirectional
    x += gate * TemporalAttn(adaLN(x))     per spatial token, causal, last `window` frames, 1-D RoPE
    x += gate * MemoryBlock(adaLN(x), a)   the swappable part (blocks/), gets the action directly
    x += gate * Mlp(adaLN(x))

with adaLN-Zero modulation from ``c = timestep_emb(level) + action_emb(action)`` per frame.
Every frame has its own diffusion level (Diffusion Forcing), so one forward call can hold clean
context frames and noisy frames side by side.

The model is a pure function of ``(x, levels, actions, state)``: ``state`` carries the
temporal-attention KV cache (last ``window - 1`` frames) and each layer's memory-block state,
so generating frame by frame equals one parallel call over the same frames.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from rad_bench.block import MemoryBlock, State, state_bytes
from rad_bench.model.layers import (
    Attention,
    Mlp,
    TimestepEmbedder,
    apply_rope,
    apply_rope_2d,
    modulate,
    rope_2d,
    rope_angles,
    temporal_mask,
)
from rad_bench.model.presets import PRESETS as PRESETS  # re-exported: the presets live torch-free


@dataclass
class DiTConfig:
    frame_size: int = 32  # square frames, pixels
    channels: int = 3
    patch: int = 4
    dim: int = 96
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    mlp_hidden: int | None = None  # overrides mlp_ratio; set by parameter matching
    window: int = 4  # frames visible to temporal attention, the current one included
    action_dim: int = 7
    attention: str = "sliding"  # "sliding" window per frame, or "chunk": non-overlapping chunks of `window`
    memory_action: bool = True  # the memory blocks get the action embedding (RAD), else zeros
    anchor: bool = False  # the output (an x0 prediction) is the last clean frame plus the head's correction
    impl: str = "auto"  # op implementation the memory blocks run: auto | kernel | ref (the suite's `impl`)

    @property
    def side(self) -> int:
        return self.frame_size // self.patch

    @property
    def tokens(self) -> int:
        return self.side**2

    @property
    def reach(self) -> int:
        """Frames that can influence the current one through attention alone: each layer looks
        ``window - 1`` frames back and stacked layers compound, as in sliding-window LMs."""
        return self.depth * (self.window - 1) + 1


@dataclass
class DiTState:
    """Everything a rollout keeps between frames."""

    t0: int = 0  # absolute index of the next frame (temporal RoPE position)
    kv: list[tuple[Tensor, Tensor] | None] = field(default_factory=list)  # per layer, (b n) h w e
    mem: list[State] = field(default_factory=list)  # per layer memory-block state
    last: Tensor | None = None  # the most recent clean frame (b, c, H, W), the next anchor (``anchor`` only)

    def nbytes(self) -> tuple[int, int]:
        """(window KV cache bytes, memory-block state bytes); ``last`` (one frame) is not counted."""
        kv = sum(k.numel() * k.element_size() * 2 for k, _ in filter(None, self.kv))
        return kv, sum(state_bytes(s) for s in self.mem)


# --------------------------------------------------------------------------------------------
#                                   Layer
# --------------------------------------------------------------------------------------------


class Modulation(NamedTuple):
    """adaLN-Zero modulation of one branch: ``x + gate * branch(norm(x) * (1 + scale) + shift)``."""

    shift: Tensor
    scale: Tensor
    gate: Tensor


class DiTLayer(nn.Module):
    """The fixed shell around one memory block."""

    BRANCHES = ("spatial", "temporal", "memory", "mlp")  # each with its Modulation, in this order in ``ada``
    N_MOD = 3 * len(BRANCHES)
    MEMORY_GATE = 3 * BRANCHES.index("memory") + 2  # index of the memory branch's gate among the modulations

    def __init__(self, cfg: DiTConfig, block: MemoryBlock) -> None:
        super().__init__()
        d = cfg.dim
        self.window, self.heads = cfg.window, cfg.heads
        if cfg.attention not in ("sliding", "chunk"):
            raise ValueError(f"attention must be 'sliding' or 'chunk', got {cfg.attention!r}")
        self.chunked = cfg.attention == "chunk"
        self.memory_action = cfg.memory_action
        self.norms = nn.ModuleList(nn.LayerNorm(d, elementwise_affine=False, eps=1e-6) for _ in range(4))
        self.spatial = Attention(d, cfg.heads)
        self.temporal = Attention(d, cfg.heads)
        self.memory = block
        self.mlp = Mlp(d, cfg.mlp_ratio, hidden=cfg.mlp_hidden)
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(d, self.N_MOD * d))

    def forward(
        self,
        x: Tensor,  # (b, t, n, d)
        cond: Tensor,  # (b, t, d)
        action: Tensor,  # (b, t, d)
        kv: tuple[Tensor, Tensor] | None,
        mem: State,
        t0: int,
        rope_sp: tuple[Tensor, Tensor],
        prefetch: bool = False,
        mlp: bool = True,
    ) -> tuple[Tensor, tuple[Tensor, Tensor], State, LayerContext | None]:
        """One layer over ``t`` frames. With ``prefetch`` (clean frames) also return what
        :meth:`denoise` needs: every frame's temporal keys/values and the memory block's context.
        ``mlp=False`` skips the MLP, whose output nothing reads in the prefetch's last layer."""
        mods = self._modulations(cond)
        x = self._spatial_branch(x, mods, rope_sp)
        sh, sc, g = mods["temporal"]
        # temporal attention keys on the action too, so the window can match "same place" just as a
        # memory block can: revisit scores then measure memory, not a handicapped baseline
        h = modulate(self.norms[1](x), sh, sc) + action[:, :, None]
        y, kv, keys = self._temporal(h, kv, t0)
        x = x + g * y
        sh, sc, g = mods["memory"]
        h, a = modulate(self.norms[2](x), sh, sc), self._memory_action(action)
        if prefetch:
            y, mem, mctx = self.memory.prefetch(h, mem, a)
        else:
            (y, mem), mctx = self.memory(h, mem, a), None
        x = x + g * y
        if mlp:
            x = self._mlp_branch(x, mods)
        return x, kv, mem, (LayerContext(*keys, mctx) if prefetch else None)

    def denoise(
        self, x: Tensor, cond: Tensor, action: Tensor, ctx: LayerContext, t0: int, rope_sp: tuple[Tensor, Tensor]
    ) -> Tensor:
        """Frame-wise pass: each frame ``t`` of ``x`` (noisy) sees, through temporal attention, the
        *clean* frames ``(t - window, t)`` of the prefetch pass plus itself, and reads the memory
        state built from the clean frames ``< t``; exactly what a rollout does one frame at a time."""
        mods = self._modulations(cond)
        x = self._spatial_branch(x, mods, rope_sp)
        sh, sc, g = mods["temporal"]
        h = modulate(self.norms[1](x), sh, sc) + action[:, :, None]
        x = x + g * self._temporal_over_clean(h, ctx, t0)
        sh, sc, g = mods["memory"]
        x = x + g * self.memory.read(modulate(self.norms[2](x), sh, sc), ctx.memory, self._memory_action(action))
        return self._mlp_branch(x, mods)

    def _modulations(self, cond: Tensor) -> dict[str, Modulation]:
        """Each branch's (shift, scale, gate), ``(b, t, 1, d)`` each, from the conditioning ``(b, t, d)``."""
        mods = self.ada(cond)[:, :, None].chunk(self.N_MOD, dim=-1)
        return {name: Modulation(*mods[3 * i : 3 * i + 3]) for i, name in enumerate(self.BRANCHES)}

    def _memory_action(self, action: Tensor) -> Tensor:
        return action if self.memory_action else torch.zeros_like(action)

    def _spatial_branch(self, x: Tensor, mods: dict[str, Modulation], rope_sp: tuple[Tensor, Tensor]) -> Tensor:
        sh, sc, g = mods["spatial"]
        return x + g * self._spatial(modulate(self.norms[0](x), sh, sc), rope_sp)

    def _mlp_branch(self, x: Tensor, mods: dict[str, Modulation]) -> Tensor:
        sh, sc, g = mods["mlp"]
        return x + g * self.mlp(modulate(self.norms[3](x), sh, sc))

    def _spatial(self, h: Tensor, rope_sp: tuple[Tensor, Tensor]) -> Tensor:
        b = h.shape[0]
        q, k, v = self.spatial.qkv(rearrange(h, "b t n d -> (b t) n d"))  # (b t) h n e
        q, k = apply_rope_2d(q, *rope_sp), apply_rope_2d(k, *rope_sp)
        return rearrange(self.spatial.attend(q, k, v), "(b t) n d -> b t n d", b=b)

    def _qkv_t(self, h: Tensor, t0: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Temporal q, k, v per spatial token, rotated at absolute frame positions ``t0, t0+1, ...``."""
        q, k, v = self.temporal.qkv(rearrange(h, "b t n d -> (b n) t d"))  # (b n) h t e
        pos = torch.arange(t0, t0 + h.shape[1], device=h.device)
        cos, sin = rope_angles(pos, q.shape[-1])
        return apply_rope(q, cos, sin), apply_rope(k, cos, sin), v, pos

    def _temporal(
        self, h: Tensor, kv: tuple[Tensor, Tensor] | None, t0: int
    ) -> tuple[Tensor, tuple[Tensor, Tensor], tuple[Tensor, Tensor, Tensor]]:
        """Causal attention over the last ``window`` frames (or inside the current chunk); ``kv`` caches
        up to window-1 past frames. Returns the output, the new cache and all keys/values seen."""
        b = h.shape[0]
        q, k, v, pos = self._qkv_t(h, t0)
        if kv is not None:  # cached keys are stored already rotated at their own positions
            k, v = torch.cat([kv[0], k], dim=2), torch.cat([kv[1], v], dim=2)
        t_end = t0 + h.shape[1]
        k_pos = torch.arange(t_end - k.shape[2], t_end, device=h.device)
        y = self.temporal.attend(q, k, v, temporal_mask(pos, k_pos, self.window, self.chunked))
        start = max(0, k.shape[2] - (self.window - 1))  # keep the frames the next call can still see
        # contiguous: one layout whatever the call's length, so a compiled denoiser traces one graph
        new_kv = (k[:, :, start:].contiguous(), v[:, :, start:].contiguous())
        return rearrange(y, "(b n) t d -> b t n d", b=b), new_kv, (k, v, k_pos)

    def _temporal_over_clean(self, h: Tensor, ctx: LayerContext, t0: int) -> Tensor:
        b, t = h.shape[:2]
        q, k, v, pos = self._qkv_t(h, t0)
        diff = pos[:, None] - ctx.k_pos[None, :]
        clean = (diff > 0) & (diff < self.window)  # the window's other frames, all clean, all earlier
        own = torch.eye(t, dtype=torch.bool, device=h.device)  # and the noisy frame itself
        mask = torch.cat([clean, own], dim=1)
        y = self.temporal.attend(q, torch.cat([ctx.k, k], dim=2), torch.cat([ctx.v, v], dim=2), mask)
        return rearrange(y, "(b n) t d -> b t n d", b=b)


@dataclass
class LayerContext:
    """What the prefetch pass over clean frames leaves for one layer's frame-wise denoising pass."""

    k: Tensor  # (b n, h, L, e) temporal keys of the cached and the clean frames, rotated
    v: Tensor
    k_pos: Tensor  # (L,) their absolute frame positions
    memory: Any  # the block's prefetch context (see MemoryBlock.prefetch)


# --------------------------------------------------------------------------------------------
#                                   Model
# --------------------------------------------------------------------------------------------


class VideoDiT(nn.Module):
    """Frames ``(b, t, c, H, W)`` in [-1, 1], levels ``(b, t)``, actions ``(b, t, a)`` ->
    per-frame prediction (epsilon or v) of the same shape as the frames."""

    def __init__(self, cfg: DiTConfig, make_block: Callable[[], MemoryBlock]) -> None:
        super().__init__()
        self.cfg = cfg
        d, p, c = cfg.dim, cfg.patch, cfg.channels
        assert cfg.frame_size % p == 0, f"frame_size {cfg.frame_size} must be a multiple of patch {p}"
        self.x_embedder = nn.Linear(p * p * c, d)
        self.t_embedder = TimestepEmbedder(d)
        self.a_embedder = nn.Linear(cfg.action_dim, d)
        self.layers = nn.ModuleList(DiTLayer(cfg, make_block()) for _ in range(cfg.depth))
        self.final_norm = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.final_ada = nn.Sequential(nn.SiLU(), nn.Linear(d, 2 * d))
        self.final_out = nn.Linear(d, p * p * c)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        # DiT recipe: xavier linears, then zero every adaLN modulation and the output layer, so each
        # residual branch starts as identity. Blocks keep their own zero-initialised output projection.
        for name, m in self.named_modules():
            if isinstance(m, nn.Linear) and ".memory." not in f".{name}.":
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.t_embedder.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[2].weight, std=0.02)
        d = self.cfg.dim
        for layer in self.layers:
            nn.init.zeros_(layer.ada[-1].weight)
            nn.init.zeros_(layer.ada[-1].bias)
            # The memory block's own output projection is zero-initialised (so every variant starts
            # as `none`); its gate therefore starts at 1, not 0: with both at zero neither would
            # ever receive a gradient and the memory branch would stay dead.
            nn.init.ones_(layer.ada[-1].bias[DiTLayer.MEMORY_GATE * d : (DiTLayer.MEMORY_GATE + 1) * d])
        for m in (self.final_ada[-1], self.final_out):
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)

    def init_state(self, batch: int, device: torch.device, dtype: torch.dtype = torch.float32) -> DiTState:
        mem = [layer.memory.init_state(batch, self.cfg.tokens, device, dtype) for layer in self.layers]
        return DiTState(t0=0, kv=[None] * len(self.layers), mem=mem)

    def forward(
        self,
        x: Tensor,
        levels: Tensor,
        actions: Tensor,
        state: DiTState | None = None,
        *,
        clean: Tensor | None = None,
        prefetch_grad: bool = True,
    ) -> tuple[Tensor, DiTState]:
        """Prediction for frames ``x`` at ``levels`` and the state after them.

        With ``clean`` (the same frames, uncorrupted) this is RAD's frame-wise training pass: one
        prefetch pass over ``clean`` builds, per layer, the window keys and the memory state entering
        every frame, then every frame of ``x`` is denoised in parallel from that clean context
        (``prefetch_grad=False`` runs the prefetch without gradient). The returned state is the one
        after the clean frames, as a rollout that committed them would hold.

        Two algorithms (:meth:`_causal` and :meth:`_framewise`) behind one ``forward`` because DDP and
        ``torch.compile`` wrap ``forward``: the training step calls the wrapped model either way."""
        if state is None:
            state = self.init_state(x.shape[0], x.device, x.dtype)
        if clean is None:
            return self._causal(x, levels, actions, state)
        return self._framewise(x, levels, actions, state, clean, prefetch_grad)

    def _causal(self, x: Tensor, levels: Tensor, actions: Tensor, state: DiTState) -> tuple[Tensor, DiTState]:
        """Every frame of ``x`` at its own level, causally after ``state`` (rollouts, chunk and df training)."""
        h, cond, a_mem, rope_sp = self._embed(x, levels, actions)
        kvs, mems = [], []
        for layer, kv, mem in zip(self.layers, state.kv, state.mem):
            h, kv, mem, _ = layer(h, cond, a_mem, kv, mem, state.t0, rope_sp)
            kvs.append(kv)
            mems.append(mem)
        anchor, last = self._anchors(x, levels, state)
        return self._head(h, cond, anchor), DiTState(t0=state.t0 + x.shape[1], kv=kvs, mem=mems, last=last)

    def _framewise(
        self, x: Tensor, levels: Tensor, actions: Tensor, state: DiTState, clean: Tensor, prefetch_grad: bool
    ) -> tuple[Tensor, DiTState]:
        """RAD's frame-wise pass: the clean prefetch, then every noisy frame denoised from its clean context."""
        with torch.set_grad_enabled(prefetch_grad and torch.is_grad_enabled()):
            ctxs, new_state = self._prefetch(clean, actions, state)
        h, cond, a_mem, rope_sp = self._embed(x, levels, actions)
        for layer, ctx in zip(self.layers, ctxs):
            h = layer.denoise(h, cond, a_mem, ctx, state.t0, rope_sp)
        anchor = None
        if self.cfg.anchor:  # every frame's anchor is the clean frame before it
            anchor = torch.cat([self._previous(state, clean)[:, None], clean[:, :-1]], dim=1)
            new_state.last = clean[:, -1]
        return self._head(h, cond, anchor), new_state

    @staticmethod
    def _previous(state: DiTState, x: Tensor) -> Tensor:
        """The clean frame before a call: ``state.last``, or zeros at the start of a clip."""
        return state.last if state.last is not None else x.new_zeros(x.shape[0], *x.shape[2:])

    def _anchors(self, x: Tensor, levels: Tensor, state: DiTState) -> tuple[Tensor | None, Tensor | None]:
        """Per frame of ``x``, the most recent clean frame before it (a frame of ``x`` at level 0, else
        ``state.last``, else zeros), and the most recent clean frame after the call (the next
        ``state.last``). ``(None, None)`` without ``cfg.anchor``."""
        if not self.cfg.anchor:
            return None, None
        b, t = levels.shape
        frames = torch.cat([self._previous(state, x)[:, None], x], dim=1)  # (b, t + 1, c, H, W)
        clean = torch.cat([torch.full((b, 1), state.last is not None, device=x.device), levels == 0], dim=1)
        pos = torch.arange(t + 1, device=x.device).expand(b, t + 1)
        recent = torch.where(clean, pos, 0).cummax(dim=1).values  # (b, t + 1): latest clean index so far
        pick = lambda i: frames[torch.arange(b, device=x.device)[:, None], i]  # noqa: E731
        return pick(recent[:, :t]), pick(recent[:, t:])[:, 0]

    def _prefetch(self, clean: Tensor, actions: Tensor, state: DiTState) -> tuple[list[LayerContext], DiTState]:
        levels = torch.zeros(clean.shape[:2], dtype=torch.long, device=clean.device)
        h, cond, a_mem, rope_sp = self._embed(clean, levels, actions)
        kvs, mems, ctxs = [], [], []
        last = len(self.layers) - 1
        for i, (layer, kv, mem) in enumerate(zip(self.layers, state.kv, state.mem)):
            h, kv, mem, ctx = layer(h, cond, a_mem, kv, mem, state.t0, rope_sp, prefetch=True, mlp=i < last)
            kvs.append(kv)
            mems.append(mem)
            ctxs.append(ctx)
        return ctxs, DiTState(t0=state.t0 + clean.shape[1], kv=kvs, mem=mems)

    def _embed(self, x: Tensor, levels: Tensor, actions: Tensor) -> tuple[Tensor, Tensor, Tensor, tuple]:
        p = self.cfg.patch
        tokens = rearrange(x, "b t c (i p1) (j p2) -> b t (i j) (p1 p2 c)", p1=p, p2=p)
        a = self.a_embedder(actions)  # (b, t, d)
        cond = self.t_embedder(levels) + a
        # blocks get the action at the scale of the normalised tokens they mix it with, so that
        # "where am I" is not drowned by frame content when a block keys its memory on it
        a_mem = F.layer_norm(a, (a.shape[-1],))
        rope_sp = rope_2d(self.cfg.side, self.cfg.dim // self.cfg.heads, x.device)
        return self.x_embedder(tokens), cond, a_mem, rope_sp

    def _head(self, h: Tensor, cond: Tensor, anchor: Tensor | None = None) -> Tensor:
        p, side = self.cfg.patch, self.cfg.side
        shift, scale = self.final_ada(cond)[:, :, None].chunk(2, dim=-1)
        out = self.final_out(modulate(self.final_norm(h), shift, scale))  # (b, t, n, p*p*c)
        out = rearrange(out, "b t (i j) (p1 p2 c) -> b t c (i p1) (j p2)", i=side, p1=p, p2=p)
        return out if anchor is None else out.float() + anchor.float()  # x0 kept in float32 under autocast


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def build_model(cfg: DiTConfig, block_cls: type[MemoryBlock], block_kwargs: dict) -> VideoDiT:
    """The DiT with ``block_cls(dim, heads=, impl=, **block_kwargs)`` in every layer's slot."""
    return VideoDiT(cfg, lambda: block_cls(cfg.dim, heads=cfg.heads, impl=cfg.impl, **block_kwargs))


def block_params(model: VideoDiT) -> int:
    return sum(count_params(layer.memory) for layer in model.layers)


def matched_config(cfg: DiTConfig, target: int, shell_and_block: int) -> DiTConfig:
    """Widen (or narrow) every layer's MLP so the whole model has about ``target`` parameters.

    ``shell_and_block`` is the model's count at ``cfg``. Each extra hidden unit costs ``2 d + 1``
    parameters per layer, so blocks with small memories get a wider MLP and every variant of a
    suite has the same budget (Po et al. 2025 match budgets too, there by layer count)."""
    hidden = cfg.mlp_hidden or int(cfg.dim * cfg.mlp_ratio)
    extra = round((target - shell_and_block) / (cfg.depth * (2 * cfg.dim + 1)))
    return replace(cfg, mlp_hidden=max(1, hidden + extra))
