"""Discriminators D1 (for IFR) and D2 (for SFR) (paper, section 3.2, Fig. 4).

Five convolutional blocks: the first four are conv + spectral normalisation + LeakyReLU(0.2),
the last a conv with a sigmoid. Fig. 4 survives only as a caption, so kernels, strides and
widths are LGNet's spectral-norm discriminator (``SNDiscriminator``, from PEN-Net): 5x5 kernels,
padding 1, strides 2, 2, 2, 1, 1, widths 64, 128, 256, 512, 1.

It is a PatchGAN: fully convolutional, it scores overlapping patches (93x93 pixels of a
256x256 image with the defaults) and returns a (B, 1, h, w) map (27x27 at 256), not one scalar.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn.utils.parametrizations import spectral_norm

from .layers import check_image_mask, init_weights


@dataclass
class DiscriminatorConfig:
    in_ch: int = 3  # paper, 3.4: D1(I_gt), D1(I_c): an RGB image, no mask
    ndf: int = 64  # our choice (LGNet SNDiscriminator): first-block width, doubled per block
    max_mult: int = 8  # our choice (LGNet): widths capped at 8 * ndf = 512
    strides: tuple[int, ...] = (2, 2, 2, 1, 1)  # paper, 3.2: five blocks; strides our choice (LGNet SNDiscriminator)
    kernel_size: int = 5  # our choice (LGNet SNDiscriminator): 5x5 (4 gives pix2pix's 70x70 PatchGAN geometry)
    padding: int = 1  # our choice (LGNet SNDiscriminator): zero padding 1
    spectral_norm: bool = True  # paper, 3.2: spectral normalisation in the first four blocks
    use_sigmoid: bool = True  # paper, 3.2: sigmoid on the last block
    img_size: int | None = 256  # paper, 4.1: 256x256; None = any size large enough
    init_gain: float = 0.02  # our choice (LGNet): 'normal' init, std 0.02


class PatchDiscriminator(nn.Module):
    """D1 / D2: spectral-norm PatchGAN (section 3.2, Fig. 4). ``forward`` -> (B, 1, h, w) scores.

    With ``use_sigmoid`` the scores are probabilities in (0, 1) (the paper's D);
    ``logits(x)`` / ``forward(x, return_logits=True)`` give the pre-sigmoid values, so losses can
    use BCE-with-logits, which equals the paper's log(sigmoid(.)) but is numerically stable.
    """

    def __init__(self, cfg: DiscriminatorConfig | None = None, **overrides):
        super().__init__()
        cfg = cfg or DiscriminatorConfig()
        if overrides:
            cfg = DiscriminatorConfig(**{**cfg.__dict__, **overrides})
        self.cfg = cfg
        if len(cfg.strides) < 2:
            raise ValueError(f"PatchDiscriminator: need >= 2 blocks, got strides={cfg.strides}")
        k, p = cfg.kernel_size, cfg.padding
        layers: list[nn.Module] = []
        c_in = cfg.in_ch
        for i, s in enumerate(cfg.strides[:-1]):  # conv + SN + LeakyReLU(0.2)
            c = cfg.ndf * min(2**i, cfg.max_mult)
            conv = init_weights(nn.Conv2d(c_in, c, k, s, p, bias=False), cfg.init_gain)
            layers += [spectral_norm(conv) if cfg.spectral_norm else conv, nn.LeakyReLU(0.2)]
            c_in = c
        layers.append(init_weights(nn.Conv2d(c_in, 1, k, cfg.strides[-1], p), cfg.init_gain))  # last block
        self.net = nn.Sequential(*layers)
        if cfg.img_size is not None and self.out_size(cfg.img_size) < 1:
            raise ValueError(
                f"PatchDiscriminator: img_size={cfg.img_size} is too small for kernel {k}, "
                f"strides {cfg.strides} (minimum {self.min_size()})"
            )

    def out_size(self, size: int) -> int:
        """Side of the output score map for a size x size input."""
        k, p = self.cfg.kernel_size, self.cfg.padding
        for s in self.cfg.strides:
            size = (size + 2 * p - k) // s + 1
        return size

    def min_size(self) -> int:
        """Smallest input side giving a non-empty score map."""
        n = 1
        while self.out_size(n) < 1:
            n += 1
        return n

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_ch, H, W) image -> (B, 1, h, w) pre-sigmoid patch scores."""
        cfg = self.cfg
        check_image_mask(x, None, cfg.in_ch, cfg.img_size, "PatchDiscriminator")
        if cfg.img_size is None and min(self.out_size(x.shape[-2]), self.out_size(x.shape[-1])) < 1:
            raise ValueError(
                f"PatchDiscriminator: input {tuple(x.shape)} too small; expected H, W >= {self.min_size()}"
            )
        return self.net(x)

    def forward(self, x: torch.Tensor, return_logits: bool = False) -> torch.Tensor:
        """(B, in_ch, H, W) image -> (B, 1, h, w) patch scores: sigmoid(logits) unless
        ``return_logits`` or ``use_sigmoid=False``."""
        z = self.logits(x)
        return torch.sigmoid(z) if self.cfg.use_sigmoid and not return_logits else z
