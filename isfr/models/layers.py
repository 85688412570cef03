"""Layers shared by the generators and discriminators: norm by name, LGNet's init, input checks, eq. 1's weight."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn as nn

Norm = Literal["batch", "instance", "none"]
Weighting = Literal["paper", "valid_fraction", "inverse_ratio", "none"]


def make_norm(norm: Norm, ch: int) -> nn.Module:
    """Normalisation layer by name (LGNet's choices: batch | instance | none)."""
    if norm == "batch":
        return nn.BatchNorm2d(ch)
    if norm == "instance":
        return nn.InstanceNorm2d(ch, affine=False, track_running_stats=False)
    if norm == "none":
        return nn.Identity()
    raise ValueError(f"norm must be 'batch', 'instance' or 'none', got {norm!r}")


def init_weights(net: nn.Module, gain: float = 0.02) -> nn.Module:
    """N(0, gain) conv/linear weights, zero biases, BN weight N(1, gain) (LGNet's 'normal' init).

    Call before wrapping layers in spectral norm (it initialises ``.weight`` directly).
    """
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return net


def check_image_mask(
    x: torch.Tensor, mask: torch.Tensor | None, channels: int, img_size: int | None, name: str
) -> None:
    """Raise ``ValueError`` naming expected vs actual shape if ``x``/``mask`` don't fit the model.

    ``x`` must be (B, channels, img_size, img_size) (any H, W if ``img_size`` is None);
    ``mask`` (if given) must be (B, 1, H, W) with the image's B, H, W. Shape-only: cheap.
    """
    if x.ndim != 4 or x.shape[1] != channels or (
        img_size is not None and tuple(x.shape[2:]) != (img_size, img_size)
    ):
        hw = f"{img_size}, {img_size}" if img_size is not None else "H, W"
        raise ValueError(
            f"{name}: expected input of shape (B, {channels}, {hw}), got {tuple(x.shape)}; "
            "resize the input or build the model for that size (config img_size)"
        )
    if mask is not None:
        b, _, h, w = x.shape
        if tuple(mask.shape) != (b, 1, h, w):
            raise ValueError(
                f"{name}: expected mask of shape ({b}, 1, {h}, {w}) to match the image "
                f"{tuple(x.shape)}, got {tuple(mask.shape)} (mask is (B, 1, H, W), 1 = hole)"
            )


def eq1_weight(mask: torch.Tensor, mode: Weighting = "paper", r_min: float = 0.01) -> torch.Tensor:
    """Per-sample weight w of eq. (1), shape (B, 1, 1, 1), from a (B, 1, H, W) mask (1 = hole).

    N_M = number of hole pixels of the sample at the mask's resolution, N = H * W.

    - ``"paper"``: w = 1 / max(N_M, 1) (literal eq. 1; N_M = 0 gives 1, not a division by zero).
    - ``"valid_fraction"``: w = 1 - N_M / N (1 without hole, 0 for an all-hole mask).
    - ``"inverse_ratio"``: w = r_min / max(N_M / N, r_min), in (0, 1], inversely proportional
      to the hole ratio above r_min.
    - ``"none"``: w = 1 (the ablation of section 4.2.3).
    """
    n_m = mask.flatten(1).sum(1).view(-1, 1, 1, 1).to(torch.float32)
    n = mask[0].numel()
    if mode == "paper":
        w = 1.0 / n_m.clamp(min=1.0)
    elif mode == "valid_fraction":
        w = 1.0 - n_m / n
    elif mode == "inverse_ratio":
        if not r_min > 0:
            raise ValueError(f"eq1_weight: r_min must be > 0, got {r_min}")
        w = r_min / (n_m / n).clamp(min=r_min)
    elif mode == "none":
        w = torch.ones_like(n_m)
    else:
        raise ValueError(
            f"eq1_weight: mode must be 'paper', 'valid_fraction', 'inverse_ratio' or 'none', got {mode!r}"
        )
    return w.to(mask.dtype if mask.is_floating_point() else torch.float32)
