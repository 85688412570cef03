"""Stage three: the Structural Feature Refinement (SFR) generator (paper, section 3.3, Fig. 5, eq. 1).

A U-Net whose encoder is split in two: E_I reads the masked input I_I, E_C reads the IFR
output; one decoder D_F gets, at every level, the skip

    F_i^E = Concat(w * F_i^{E_I}, F_i^{E_C})                      (eq. 1, w = 1 / N_M in the paper)

and the bottleneck is the same concatenation of the two innermost features. Fig. 5 survives
only as a caption, so kernels, widths and depth are LGNet's refinement U-Net (``Unet256``:
4x4 stride-2 convs, widths ngf * (1, 2, 4, 8, 8, ...), down to 1x1). The weighting is ambiguous
in the paper; ``SFRConfig.weighting`` / ``weighted_levels`` name the readings (docs/architecture.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Union

import torch
import torch.nn as nn

from .layers import Norm, Weighting, check_image_mask, eq1_weight, init_weights, make_norm  # noqa: F401 (re-export)

WeightedLevels = Union[Literal["all", "skips", "bottleneck"], tuple[int, ...]]


@dataclass
class SFRConfig:
    img_ch: int = 3  # paper, 3.3: RGB images I_I and I_IFR
    ei_mask: bool = True  # our choice (LGNet): E_I sees I_I concatenated with M (4 ch): holes are 0, M says where
    ec_mask: bool = True  # our choice (LGNet): E_C sees I_IFR concatenated with M (4 ch): every LGNet stage gets M
    out_ch: int = 3  # paper, 3.3: RGB output
    ngf: int = 64  # our choice (LGNet Unet256): width of level 0; level i has ngf * min(2**i, max_mult)
    max_mult: int = 8  # our choice (LGNet Unet256): widths capped at 8 * ngf = 512
    depth: int | None = None  # our choice (LGNet Unet256): None = log2(img_size) levels, bottleneck 1x1 (8 at 256)
    norm: Norm = "batch"  # our choice (LGNet): Pix2PixGLG uses norm='batch'
    img_size: int = 256  # paper, 4.1: 256x256
    weighting: Weighting = "paper"  # paper, eq. 1: w = 1 / N_M (literal); see eq1_weight for the other readings
    weighted_levels: WeightedLevels = "all"  # our choice: eq. 1 is written for every level i and the bottleneck
    r_min: float = 0.01  # our choice: floor of the hole ratio for weighting="inverse_ratio"
    init_gain: float = 0.02  # our choice (LGNet): 'normal' init, std 0.02
    upsample: Literal["transposed", "resize_conv"] = "transposed"  # our choice (LGNet): 4x4 stride-2 transposed
    # convs; "resize_conv" = nearest x2 then 3x3 conv (no checkerboard pattern; Odena et al. 2016)
    layout: Literal["unet256", "unet"] = "unet256"  # ours: "unet256" = LGNet's refinement U-Net (this module);
    # "unet" = isfr.models.unet.UNet with encoders=2 (two 3x3 convs per level, full resolution included, depth 4),
    # which reads ngf, max_mult, norm, weighting and img_size (and UNet's depth when depth is set): see build_sfr
    full_res: bool = False  # ours: False = LGNet Unet256 (nothing at full resolution: level 0 is already
    # stride 2); True adds a 3x3 conv stem at full resolution to E_I and E_C, passed as one more eq.-1 skip
    # (weighted like level 0) to a 3x3 conv head after the last upsampling, as Ronneberger's U-Net does


def _encoder(c_in: int, widths: list[int], norm: Norm) -> nn.ModuleList:
    """Levels of 4x4 stride-2 conv -> norm (not on the first and innermost level) -> LeakyReLU(0.2)."""
    blocks, d = [], len(widths)
    for i, c in enumerate(widths):
        use_norm = 0 < i < d - 1
        blocks.append(nn.Sequential(
            nn.Conv2d(c_in, c, 4, 2, 1, bias=not use_norm or norm == "none"),
            make_norm(norm, c) if use_norm else nn.Identity(),
            nn.LeakyReLU(0.2),
        ))
        c_in = c
    return nn.ModuleList(blocks)


class SFRGenerator(nn.Module):
    """SFR generator G_SFR(I_I, I_IFR, M) -> image in [-1, 1] (section 3.3, Fig. 5, eq. 1).

    Level i (0 = outermost, depth-1 = bottleneck) has features F_i of size img_size / 2**(i+1).
    The decoder block ``dec[i]`` upsamples from level i to level i-1 (``dec[0]`` to the output);
    its input is Concat(h_i, w_i * F_i^{E_I}, F_i^{E_C}) with h_i the previous decoder output
    (absent for the bottleneck), w_i = eq1_weight(M) if level i is weighted, else 1.
    """

    def __init__(self, cfg: SFRConfig | None = None, **overrides):
        super().__init__()
        cfg = cfg or SFRConfig()
        if overrides:
            cfg = SFRConfig(**{**cfg.__dict__, **overrides})
        self.cfg = cfg
        s = cfg.img_size
        if s < 2 or s & (s - 1):
            raise ValueError(f"SFRGenerator: img_size must be a power of two >= 2, got {s}")
        max_depth = int(math.log2(s))
        depth = max_depth if cfg.depth is None else cfg.depth
        if not 1 <= depth <= max_depth:
            raise ValueError(
                f"SFRGenerator: depth must be in [1, {max_depth}] for img_size={s} "
                f"(each level halves the size), got {depth}"
            )
        self.depth = depth
        self.weighted = self._resolve_levels(cfg.weighted_levels, depth)
        widths = [cfg.ngf * min(2**i, cfg.max_mult) for i in range(depth)]
        self.widths = widths
        c_i, c_c = cfg.img_ch + int(cfg.ei_mask), cfg.img_ch + int(cfg.ec_mask)
        if cfg.full_res:  # full-resolution stems: 3x3 conv -> LeakyReLU(0.2), ngf channels
            self.stem_i = nn.Sequential(nn.Conv2d(c_i, cfg.ngf, 3, 1, 1), nn.LeakyReLU(0.2))
            self.stem_c = nn.Sequential(nn.Conv2d(c_c, cfg.ngf, 3, 1, 1), nn.LeakyReLU(0.2))
            c_i = c_c = cfg.ngf
        self.enc_i = _encoder(c_i, widths, cfg.norm)  # E_I
        self.enc_c = _encoder(c_c, widths, cfg.norm)  # E_C
        if cfg.upsample not in ("transposed", "resize_conv"):
            raise ValueError(f"SFRGenerator: upsample must be 'transposed' or 'resize_conv', got {cfg.upsample!r}")

        def up(c_in: int, c_out: int, bias: bool) -> list[nn.Module]:
            if cfg.upsample == "transposed":
                return [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=bias)]
            return [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, 1, 1, bias=bias)]

        dec = []  # D_F: ReLU -> x2 upsampling conv -> norm (tanh on the last)
        for i in range(depth):
            c_in = 2 * widths[i] + (widths[i] if i < depth - 1 else 0)
            if i == 0 and not cfg.full_res:
                dec.append(nn.Sequential(nn.ReLU(), *up(c_in, cfg.out_ch, True), nn.Tanh()))
            elif i == 0:  # to full resolution, then the head reads Concat(h, w * stem_I, stem_C)
                dec.append(nn.Sequential(nn.ReLU(), *up(c_in, cfg.ngf, cfg.norm == "none"), make_norm(cfg.norm, cfg.ngf)))
            else:
                c_out = widths[i - 1]
                dec.append(nn.Sequential(nn.ReLU(), *up(c_in, c_out, cfg.norm == "none"), make_norm(cfg.norm, c_out)))
        self.dec = nn.ModuleList(dec)
        if cfg.full_res:
            self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(3 * cfg.ngf, cfg.ngf, 3, 1, 1), nn.ReLU(),
                                      nn.Conv2d(cfg.ngf, cfg.out_ch, 3, 1, 1), nn.Tanh())
        init_weights(self, cfg.init_gain)

    @staticmethod
    def _resolve_levels(levels: WeightedLevels, depth: int) -> tuple[bool, ...]:
        if levels == "all":
            idx = set(range(depth))
        elif levels == "skips":
            idx = set(range(depth - 1))
        elif levels == "bottleneck":
            idx = {depth - 1}
        elif isinstance(levels, (tuple, list)) and all(isinstance(i, int) for i in levels):
            bad = [i for i in levels if not 0 <= i < depth]
            if bad:
                raise ValueError(f"SFRGenerator: weighted_levels {bad} outside [0, {depth - 1}] (depth={depth})")
            idx = set(levels)
        else:
            raise ValueError(
                f"SFRGenerator: weighted_levels must be 'all', 'skips', 'bottleneck' or a tuple of "
                f"level indices, got {levels!r}"
            )
        return tuple(i in idx for i in range(depth))

    def forward(self, i_in: torch.Tensor, i_ifr: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """I_I (B, 3, S, S) masked input, I_IFR (B, 3, S, S) IFR output, M (B, 1, S, S) -> (B, 3, S, S)."""
        cfg = self.cfg
        check_image_mask(i_in, mask, cfg.img_ch, cfg.img_size, "SFRGenerator (I_I)")
        check_image_mask(i_ifr, mask, cfg.img_ch, cfg.img_size, "SFRGenerator (I_IFR)")
        m = mask.to(i_in.dtype)
        a = torch.cat([i_in, m], 1) if cfg.ei_mask else i_in
        c = torch.cat([i_ifr, m], 1) if cfg.ec_mask else i_ifr
        if cfg.full_res:
            a, c = self.stem_i(a), self.stem_c(c)
            stems = (a, c)
        feats_i, feats_c = [], []
        for e_i, e_c in zip(self.enc_i, self.enc_c):
            a, c = e_i(a), e_c(c)
            feats_i.append(a)
            feats_c.append(c)
        w = eq1_weight(mask, cfg.weighting, cfg.r_min).to(i_in.dtype)
        h = None
        for i in reversed(range(self.depth)):
            f_i = feats_i[i] * w if self.weighted[i] else feats_i[i]
            parts = [f_i, feats_c[i]] if h is None else [h, f_i, feats_c[i]]
            h = self.dec[i](torch.cat(parts, 1))
        if cfg.full_res:
            s_i = stems[0] * w if self.weighted[0] else stems[0]
            h = self.head(torch.cat([h, s_i, stems[1]], 1))
        return h


def build_sfr(cfg: SFRConfig) -> nn.Module:
    """The SFR generator of ``cfg.layout``: :class:`SFRGenerator` (LGNet's Unet256, the default) or the
    two-encoder :class:`isfr.models.unet.UNet` (ours; same call ``(I_I, I_IFR, M)``, same eq.-1 skips)."""
    if cfg.layout == "unet256":
        return SFRGenerator(cfg)
    if cfg.layout != "unet":
        raise ValueError(f"SFRConfig.layout must be 'unet256' or 'unet', got {cfg.layout!r}")
    from .unet import UNet, UNetConfig

    if cfg.upsample != "transposed" or cfg.full_res or cfg.weighted_levels != "all" or not (cfg.ei_mask and cfg.ec_mask):
        raise ValueError("SFRConfig.layout='unet' takes ngf, max_mult, depth, norm, weighting and img_size only; "
                         "upsample, full_res, weighted_levels and ei_mask/ec_mask are Unet256 options")
    return UNet(UNetConfig(ngf=cfg.ngf, max_mult=cfg.max_mult, depth=cfg.depth or UNetConfig.depth, norm=cfg.norm,
                           encoders=2, weighting=cfg.weighting, img_size=cfg.img_size))


def input_gradient_share(sfr: nn.Module, masked: torch.Tensor, guess: torch.Tensor, mask: torch.Tensor,
                         seed: int = 0) -> float:
    """E_I's share of the output's input-gradient norm: ``|dy/dI_I| / (|dy/dI_I| + |dy/dguess|)`` for a random
    projection of the output ``y = sfr(I_I, guess, M)`` (eq. 1's weight scales what E_I can contribute; the
    literal 1/N_M leaves it about 0.1 % at 64 px)."""
    a, c = masked.detach().clone().requires_grad_(), guess.detach().clone().requires_grad_()
    out = sfr(a, c, mask)
    probe = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=out.dtype)
    ga, gc = torch.autograd.grad((out * probe.to(out.device)).sum(), (a, c))
    return float(ga.norm() / (ga.norm() + gc.norm()))
