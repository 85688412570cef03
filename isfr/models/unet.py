"""A plain U-Net inpainter (ours, not the paper's): the learned baseline and the first rung of the ladder.

Ronneberger et al. (2015) at inpainting size: two 3x3 conv -> norm -> ReLU per level, full
resolution included; 2x2 max-pool down, bilinear x2 + 3x3 conv up, skips concatenated; a 1x1
head with no output activation (composites clamp to [-1, 1]). It reads the masked image and the
mask, as every stage here does.

``encoders=2`` turns it toward the SFR one ingredient at a time (isfr.experiments.ladder): a second encoder
E_C reads a guess (the IFR output, composited) and the skips are Concat(w * F^E_I, F^E_C) as in
eq. (1), with ``weighting`` any reading of :func:`isfr.models.layers.eq1_weight`. As the SFR of
``SFRConfig.layout="unet"`` (:func:`isfr.models.sfr.build_sfr`) it is a stage of ISFRNet.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .layers import Norm, Weighting, check_image_mask, eq1_weight, make_norm


@dataclass
class UNetConfig:
    ngf: int = 32  # width at full resolution; level i has ngf * min(2**i, max_mult)
    max_mult: int = 8  # widths capped at ngf * 8 (256 at ngf 32)
    depth: int = 4  # pooling steps below full resolution: 64 px -> 4 px bottleneck
    norm: Norm = "none"  # a plain U-Net; "batch" / "instance" are ladder rungs
    encoders: int = 1  # 2: E_I (masked image + mask) and E_C (guess + mask), eq.-1 skips
    weighting: Weighting = "none"  # eq. 1's w on E_I's features (encoders=2 only)
    img_size: int = 64


def _block(c_in: int, c_out: int, norm: Norm) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, 1, 1, bias=norm == "none"), make_norm(norm, c_out), nn.ReLU(True),
                         nn.Conv2d(c_out, c_out, 3, 1, 1, bias=norm == "none"), make_norm(norm, c_out), nn.ReLU(True))


def _encoder(widths: list[int], norm: Norm) -> nn.ModuleList:
    return nn.ModuleList(_block(c_in, c, norm) for c_in, c in zip([4] + widths[:-1], widths))


class UNet(nn.Module):
    """``UNet(cfg)(masked, mask)`` or, with ``encoders=2``, ``(masked, guess, mask)`` -> image (B, 3, S, S)."""

    def __init__(self, cfg: UNetConfig | None = None, **overrides):
        super().__init__()
        cfg = UNetConfig(**{**(cfg or UNetConfig()).__dict__, **overrides})
        if cfg.encoders not in (1, 2):
            raise ValueError(f"UNet: encoders must be 1 or 2, got {cfg.encoders}")
        if cfg.img_size % 2**cfg.depth:
            raise ValueError(f"UNet: img_size {cfg.img_size} is not divisible by 2**depth = {2**cfg.depth}")
        self.cfg = cfg
        widths = [cfg.ngf * min(2**i, cfg.max_mult) for i in range(cfg.depth + 1)]
        self.widths = widths
        self.enc_i = _encoder(widths, cfg.norm)
        self.enc_c = _encoder(widths, cfg.norm) if cfg.encoders == 2 else None
        k = cfg.encoders  # each skip is the concatenation of k encoders' features
        self.up = nn.ModuleList(nn.Conv2d(k * widths[i + 1] if i == cfg.depth - 1 else widths[i + 1], widths[i], 3, 1, 1)
                                for i in range(cfg.depth))
        self.dec = nn.ModuleList(_block((k + 1) * widths[i], widths[i], cfg.norm) for i in range(cfg.depth))
        self.head = nn.Conv2d(widths[0], 3, 1)

    @staticmethod
    def _encode(blocks: nn.ModuleList, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for i, block in enumerate(blocks):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            feats.append(x)
        return feats

    def forward(self, masked: torch.Tensor, *args: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        if len(args) != cfg.encoders:
            raise TypeError(f"UNet with {cfg.encoders} encoder(s) takes "
                            + ("(masked, mask)" if cfg.encoders == 1 else "(masked, guess, mask)"))
        mask = args[-1]
        check_image_mask(masked, mask, 3, cfg.img_size, "UNet")
        m = mask.to(masked.dtype)
        feats = self._encode(self.enc_i, torch.cat([masked, m], 1))
        if self.enc_c is not None:
            w = eq1_weight(mask, cfg.weighting).to(masked.dtype)
            feats_c = self._encode(self.enc_c, torch.cat([args[0], m], 1))
            feats = [torch.cat([w * a, c], 1) for a, c in zip(feats, feats_c)]
        h = feats[-1]
        for i in reversed(range(cfg.depth)):
            h = self.up[i](F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=False))
            h = self.dec[i](torch.cat([h, feats[i]], 1))
        return self.head(h)
