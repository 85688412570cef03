"""Stage two: the Identity Feature Recovery (IFR) generator (paper, section 3.2, Fig. 3).

Input layer -> two stride-2 downsampling convs -> four residual blocks -> two
upsampling layers -> output layer with Tanh. Fig. 3 survives only as a caption,
so kernels, widths, norm and padding are LGNet's ``resnet_4blocks`` generator
(see docs/architecture.md for the value-by-value table).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from .layers import Norm, check_image_mask, init_weights, make_norm

# ----------------------------------------------------------------------------- model


@dataclass
class IFRConfig:
    in_ch: int = 3  # paper, 3.2: RGB image (stage-1 composite I_c*M + I_gt*(1-M), made by the pipeline)
    use_mask: bool = True  # our choice (LGNet): mask M concatenated to the input (4 ch); every LGNet stage sees M
    out_ch: int = 3  # paper, 3.2: RGB output
    ngf: int = 64  # our choice (LGNet): base width; shrink for CPU runs
    n_down: int = 2  # paper, 3.2: two downsampling layers (and two upsampling layers)
    n_blocks: int = 4  # paper, 3.2: four residual blocks
    norm: Norm = "batch"  # our choice (LGNet): Pix2PixGLG sets norm='batch' for all its generators
    img_size: int | None = 256  # paper, 4.1: 256x256; None = any size divisible by 2**n_down
    init_gain: float = 0.02  # our choice (LGNet): 'normal' init, std 0.02


class ResBlock(nn.Module):
    """Reflect-pad 3x3 conv, norm, ReLU, reflect-pad 3x3 conv, norm, plus identity (LGNet ResnetBlock)."""

    def __init__(self, ch: int, norm: Norm):
        super().__init__()
        bias = norm == "none"  # a bias before a normalisation is cancelled by it
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3, bias=bias), make_norm(norm, ch), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3, bias=bias), make_norm(norm, ch),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class IFRGenerator(nn.Module):
    """IFR generator G_IFR(x, M) -> image in [-1, 1] (section 3.2, Fig. 3).

    ``x`` is the (B, 3, H, W) image to refine (the pipeline passes the stage-1 output composited
    with the known pixels), ``mask`` the (B, 1, H, W) hole mask; they are concatenated here.
    """

    def __init__(self, cfg: IFRConfig | None = None, **overrides):
        super().__init__()
        cfg = cfg or IFRConfig()
        if overrides:
            cfg = IFRConfig(**{**cfg.__dict__, **overrides})
        self.cfg = cfg
        f = 2**cfg.n_down
        if cfg.img_size is not None and cfg.img_size % f:
            raise ValueError(f"IFRGenerator: img_size must be divisible by {f}, got {cfg.img_size}")
        bias = cfg.norm == "none"
        c_in = cfg.in_ch + int(cfg.use_mask)
        g = cfg.ngf
        layers: list[nn.Module] = [  # input layer: 7x7 conv, stride 1, reflection padding
            nn.ReflectionPad2d(3), nn.Conv2d(c_in, g, 7, bias=bias), make_norm(cfg.norm, g), nn.ReLU(True),
        ]
        for i in range(cfg.n_down):  # downsampling: 3x3 conv, stride 2, width x2
            c = g * 2**i
            layers += [nn.Conv2d(c, 2 * c, 3, 2, 1, bias=bias), make_norm(cfg.norm, 2 * c), nn.ReLU(True)]
        layers += [ResBlock(g * f, cfg.norm) for _ in range(cfg.n_blocks)]
        for i in range(cfg.n_down, 0, -1):  # upsampling: 3x3 transposed conv, stride 2, width /2
            c = g * 2**i
            layers += [
                nn.ConvTranspose2d(c, c // 2, 3, 2, 1, output_padding=1, bias=bias),
                make_norm(cfg.norm, c // 2), nn.ReLU(True),
            ]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(g, cfg.out_ch, 7), nn.Tanh()]  # output layer
        self.net = nn.Sequential(*layers)
        init_weights(self, cfg.init_gain)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, in_ch, H, W) image and (B, 1, H, W) mask -> (B, out_ch, H, W) in [-1, 1]."""
        cfg = self.cfg
        check_image_mask(x, mask, cfg.in_ch, cfg.img_size, "IFRGenerator")
        f = 2**cfg.n_down
        if x.shape[-1] % f or x.shape[-2] % f:
            raise ValueError(f"IFRGenerator: H and W must be divisible by {f}, got {tuple(x.shape)}")
        if cfg.use_mask:
            x = torch.cat([x, mask.to(x.dtype)], 1)
        return self.net(x)
