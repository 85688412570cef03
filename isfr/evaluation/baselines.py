"""Inpainting methods behind one signature, for :func:`isfr.evaluation.evaluate`.

``method(image, mask) -> out``: ``image`` ``(B, 3, H, W)`` in [-1, 1] (hole pixels may hold anything;
methods must not read them), ``mask`` ``(B, 1, H, W)`` with 1 = hole; ``out`` ``(B, 3, H, W)`` in
[-1, 1] on the CPU. :func:`biharmonic` and :func:`mean_fill` are classical floors (not in the
paper), :func:`unet_method` the learned U-Net baseline (ours); :func:`isfrnet_method` exposes any
stage of :class:`isfr.models.isfrnet.ISFRNet`, e.g.
``key="stage1"`` = pSp alone (Table 2's "pSp [3]") and ``key="output"`` = the final SFR image.
"""

from __future__ import annotations

from typing import Callable, Protocol

import numpy as np
import torch
from skimage.restoration import inpaint_biharmonic
from torch import Tensor

from isfr.core.utils import autocast


class Method(Protocol):
    """``(image (B,3,H,W) in [-1,1], mask (B,1,H,W) 1=hole) -> (B,3,H,W) in [-1,1]``."""

    def __call__(self, image: Tensor, mask: Tensor) -> Tensor: ...


def _check(image: Tensor, mask: Tensor) -> None:
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"image must be (B, 3, H, W), got {tuple(image.shape)}")
    if mask.shape != (image.shape[0], 1, *image.shape[2:]):
        raise ValueError(f"mask must be ({image.shape[0]}, 1, {image.shape[2]}, {image.shape[3]}), "
                         f"got {tuple(mask.shape)}")


def _known_only(image: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    m = (mask > 0.5).to(image.dtype)
    return image * (1 - m), m


@torch.no_grad()
def mean_fill(image: Tensor, mask: Tensor) -> Tensor:
    """Holes filled with the per-image, per-channel mean of the known pixels (0 if none): a floor."""
    _check(image, mask)
    known, m = _known_only(image.float(), mask)
    n_known = (1 - m).sum(dim=(2, 3))  # (B, 1)
    mean = known.sum(dim=(2, 3)) / n_known.clamp_min(1)  # (B, 3); 0 when the whole frame is a hole
    return known + m * mean[:, :, None, None]


@torch.no_grad()
def biharmonic(image: Tensor, mask: Tensor) -> Tensor:
    """``skimage.restoration.inpaint_biharmonic`` per image on [0, 1] floats (``channel_axis=-1``).

    Known pixels are returned unchanged; an all-hole frame falls back to :func:`mean_fill` (mid-grey).
    Cost grows with hole area: ~0.2 s per 256 px image with a 20% hole on one core.
    """
    _check(image, mask)
    x = ((image.detach().float().cpu() + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1).numpy().astype(np.float64)
    holes = (mask.detach().cpu()[:, 0] > 0.5).numpy()
    out = x.copy()
    for i in range(x.shape[0]):
        if holes[i].all():
            out[i] = 0.5
        elif holes[i].any():
            out[i] = inpaint_biharmonic(np.where(holes[i][..., None], 0.0, x[i]), holes[i], channel_axis=-1)
    y = torch.from_numpy(out).permute(0, 3, 1, 2).float().mul(2).sub(1).clamp(-1, 1)
    return y.contiguous()


def isfrnet_method(model: torch.nn.Module, key: str = "output") -> Callable[[Tensor, Tensor], Tensor]:
    """Adapter: the raw image ``model(image, mask)[key]`` of an :class:`~isfr.models.isfrnet.ISFRNet`.

    ``key``: ``"stage1"`` (pSp-StyleGAN alone), ``"ifr"``, ``"sfr"``, ``"output"`` (final, raw) or
    ``"composite"``. The model runs in eval mode under ``no_grad`` on its own device; the result
    comes back on the CPU. Score a raw key with ``evaluate(..., composite=False)`` to get it
    uncomposited (Table 2's pSp row is scored both ways).
    """

    @torch.no_grad()
    def method(image: Tensor, mask: Tensor) -> Tensor:
        _check(image, mask)
        model.eval()
        p = next(model.parameters(), None)
        dev = p.device if p is not None else torch.device("cpu")
        out = model(image.to(dev), mask.to(dev))
        if key not in out:
            raise KeyError(f"ISFRNet output has no {key!r}; available: {sorted(out)} "
                           "(ablated models lack 'ifr' or 'sfr')")
        return out[key].float().cpu()

    method.__name__ = f"isfrnet_{key}"
    method.__qualname__ = method.__name__
    return method


def unet_method(net: torch.nn.Module) -> Callable[[Tensor, Tensor], Tensor]:
    """Adapter for the learned baseline (ours): a one-encoder :class:`isfr.models.unet.UNet` reading the
    masked image and the mask, run at the precision ``"auto"`` picks (bf16 autocast on a CPU that runs bf16 in
    hardware, as it was trained; fp32 elsewhere: :func:`isfr.core.utils.resolve_amp`), clamped to [-1, 1]."""
    @torch.no_grad()
    def method(image: Tensor, mask: Tensor) -> Tensor:
        _check(image, mask)
        net.eval()
        dev = next(net.parameters()).device
        masked, m = _known_only(image.to(dev), mask.to(dev))
        with autocast(dev, "auto" if dev.type == "cpu" else "none"):
            out = net(masked, m)
        return out.float().clamp(-1, 1).cpu()

    method.__name__ = method.__qualname__ = "unet"
    return method


BASELINES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {"biharmonic": biharmonic, "mean_fill": mean_fill}
