"""Stage one (section 3.1): pSp encoder + StyleGAN2 generator, built from two config dataclasses.

Paper preset: the official ``psp_ffhq_encode.pt`` (IR-SE-50 encoder, 18 styles, 1024 px config-f
generator pooled to 256), used frozen. CPU presets: the same classes at reduced width, trained by
``isfr.training`` (a generator first, then an encoder on masked faces with the generator frozen).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .psp import PSP, GradualStyleEncoder
from .stylegan2 import Generator


@dataclass
class StyleGANConfig:
    """Stage-1 generator (rosinality layout). Defaults: the 1024 px FFHQ generator inside pSp."""

    size: int = 1024  # pSp's FFHQ decoder (section 3.1: 18 styles = 2*log2(1024) - 2)
    style_dim: int = 512  # section 3.1: "each style generates 512 vectors"
    n_mlp: int = 8  # StyleGAN2 config-f
    channel_multiplier: int = 2  # StyleGAN2 config-f
    channel_max: int | None = None  # ours: caps widths for CPU-scale generators


@dataclass
class PSPConfig:
    """Stage-1 encoder (section 3.1). ``checkpoint``: the official pSp file, used frozen (paper)."""

    num_layers: int = 50  # pSp: IR-SE-50 backbone
    input_nc: int = 3  # pSp: RGB. Ours for encoders trained here: 4 (masked image + mask)
    width: float = 1.0  # ours: < 1 for CPU-scale encoders (same class)
    checkpoint: str | None = "weights/psp_ffhq_encode.pt"  # None: build (and train) our own
    finetune: bool = False  # ours: fine-tune the encoder on masked inputs, generator frozen


def build_generator(cfg: StyleGANConfig) -> Generator:
    return Generator(cfg.size, cfg.style_dim, cfg.n_mlp, channel_multiplier=cfg.channel_multiplier, channel_max=cfg.channel_max)


def build_stage1(gen_cfg: StyleGANConfig, enc_cfg: PSPConfig, resolution: int, root: Path | None = None) -> PSP:
    """pSp-StyleGAN at the working ``resolution``: from the official checkpoint when one is
    configured, else a freshly initialised encoder + generator of the configured widths."""
    if enc_cfg.checkpoint:
        path = Path(enc_cfg.checkpoint)
        if root is not None and not path.is_absolute():
            path = root / path
        return PSP.from_official_checkpoint(path, resolution=resolution)
    gen = build_generator(gen_cfg)
    enc = GradualStyleEncoder(
        num_layers=enc_cfg.num_layers, input_nc=enc_cfg.input_nc, n_styles=gen.n_latent,
        style_dim=gen_cfg.style_dim, width=enc_cfg.width, input_size=resolution,
    )
    # latent_avg starts at zero; training sets it to the generator's mean W (pSp's start_from_latent_avg)
    return PSP(enc, gen, latent_avg=torch.zeros(gen_cfg.style_dim), resolution=resolution)
