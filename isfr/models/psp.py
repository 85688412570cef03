"""Stage one of ISFRNet (paper section 3.1): the pSp encoder + a pretrained StyleGAN2 generator.

pSp = "pixel2style2pixel" (Richardson et al. 2021, *Encoding in Style*, CVPR). The encoder is an
IR-SE-50 ResNet (the ArcFace backbone) with a feature pyramid; ``n_styles`` map2style heads read
the W+ codes from it: styles 0-2 from the smallest map, 3-6 from the medium map and 7..n_styles-1
from the largest (the paper's "7-8"). Parameter names follow the official pSp checkpoint
(``encoder.*`` keys of ``psp_ffhq_encode.pt``), so that checkpoint loads with strict matching.

Defaults are the official model (256 px input, 18 styles, 512 channels, RGB input). Reduced
variants for CPU-scale runs are the same classes with other arguments (``width``, ``style_dim``,
``input_size``, ``n_styles``, ``input_nc`` = 4 for image + mask, ``num_layers``).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from isfr.models.checkpoint_utils import check_state_dict, load_torch_file
from isfr.models.pretrained import STANDIN_KEY, drop_standin_marker, refuse_standin
from isfr.models.stylegan2 import EqualLinear, Generator  # pSp reuses StyleGAN2's EqualLinear too

PSP_FFHQ_ENCODE_URL = "https://drive.google.com/file/d/1bMTNWkh5LArlaWSc_wa8VKyq2V42T2z0/view"
IRSE50_URL = "https://drive.google.com/file/d/1KW7bjndL3QG3sxBbZxreGHigcCCpsDgn/view"
IRSE50_WHERE = f"Download 'IR-SE50 Model' (model_ir_se50.pth) from {IRSE50_URL} (pSp README, auxiliary models)"

# Units per stage of the IR(-SE) ResNets; stage c has (64, 128, 256, 512)[c] channels and its
# first unit has stride 2 (InsightFace / TreB1eN layout, as used by pSp).
STAGE_UNITS = {50: (3, 4, 14, 3), 100: (3, 13, 30, 3), 152: (3, 8, 36, 3)}
COARSE, MIDDLE = 3, 7  # styles [0, 3) from the 1/16 map, [3, 7) from 1/8, [7, n) from 1/4


def n_styles_for(size: int) -> int:
    """Number of W+ codes of a StyleGAN2 generator with output ``size``: 2 log2(size) - 2."""
    log = int(math.log2(size))
    if 2**log != size or size < 4:
        raise ValueError(f"generator size must be a power of two >= 4, got {size}")
    return 2 * log - 2


class SEModule(nn.Module):
    """Squeeze-and-excitation gate (bias-free 1x1 convs ``fc1``/``fc2``)."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        return x * self.sigmoid(self.fc2(self.relu(self.fc1(self.avg_pool(x)))))


class BottleneckIRSE(nn.Module):
    """Improved-residual unit BN-conv-PReLU-conv-BN(-SE) + shortcut (pSp's ``bottleneck_IR_SE``)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, se: bool = True):
        super().__init__()
        if in_ch == out_ch:
            self.shortcut_layer = nn.MaxPool2d(1, stride)  # parameter-free subsampling
        else:
            self.shortcut_layer = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch)
            )
        layers = [
            nn.BatchNorm2d(in_ch),
            nn.Conv2d(in_ch, out_ch, 3, 1, 1, bias=False),
            nn.PReLU(out_ch),
            nn.Conv2d(out_ch, out_ch, 3, stride, 1, bias=False),
            nn.BatchNorm2d(out_ch),
        ]
        self.res_layer = nn.Sequential(*layers, *([SEModule(out_ch)] if se else []))

    def forward(self, x: Tensor) -> Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


def irse_trunk(num_layers: int = 50, input_nc: int = 3, width: float = 1.0, se: bool = True
               ) -> tuple[nn.Sequential, nn.Sequential, list[int]]:
    """``(input_layer, body, channels)`` of an IR(-SE) ResNet in the InsightFace / TreB1eN key layout
    shared by pSp's encoder and the ArcFace network (:mod:`isfr.models.arcface`)."""
    if num_layers not in STAGE_UNITS:
        raise ValueError(f"num_layers must be one of {sorted(STAGE_UNITS)}, got {num_layers}")
    chans = [max(1, round(c * width)) for c in (64, 128, 256, 512)]
    input_layer = nn.Sequential(
        nn.Conv2d(input_nc, chans[0], 3, 1, 1, bias=False), nn.BatchNorm2d(chans[0]), nn.PReLU(chans[0])
    )
    units, in_ch = [], chans[0]
    for n, ch in zip(STAGE_UNITS[num_layers], chans):
        units += [BottleneckIRSE(in_ch, ch, 2, se)] + [BottleneckIRSE(ch, ch, 1, se) for _ in range(n - 1)]
        in_ch = ch
    return input_layer, nn.Sequential(*units), chans


class GradualStyleBlock(nn.Module):
    """map2style head: log2(spatial) stride-2 3x3 convs (LeakyReLU 0.01) down to 1x1, then EqualLinear."""

    def __init__(self, in_ch: int, out_ch: int, spatial: int):
        super().__init__()
        n_down = int(math.log2(spatial))
        if n_down < 1 or 2**n_down != spatial:
            raise ValueError(f"head input size must be a power of two >= 2, got {spatial}")
        layers: list[nn.Module] = []
        for i in range(n_down):
            layers += [nn.Conv2d(in_ch if i == 0 else out_ch, out_ch, 3, 2, 1), nn.LeakyReLU()]
        self.convs = nn.Sequential(*layers)
        self.linear = EqualLinear(out_ch, out_ch)
        self.out_ch = out_ch

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(self.convs(x).reshape(x.shape[0], self.out_ch))


class GradualStyleEncoder(nn.Module):
    """pSp encoder: IR-SE ResNet + FPN + map2style heads -> W+ codes (B, n_styles, style_dim).

    Richardson et al. 2021, section 3; ISFRNet section 3.1. ``width`` scales the body channels
    (64, 128, 256, 512); the pyramid has the top stage's channels; heads output ``style_dim``.
    ``input_size`` fixes the head depths (official: 256 -> maps 16/32/64 px). For ``input_nc`` = 4
    the input is ``cat([image, mask], 1)``.
    """

    def __init__(
        self,
        num_layers: int = 50,
        input_nc: int = 3,
        n_styles: int = 18,
        style_dim: int = 512,
        width: float = 1.0,
        input_size: int = 256,
        se: bool = True,
    ):
        super().__init__()
        if input_size % 16 or input_size < 32:
            raise ValueError(f"input_size must be a multiple of 16 and >= 32, got {input_size}")
        if n_styles < 1:
            raise ValueError(f"n_styles must be >= 1, got {n_styles}")
        self.input_nc, self.n_styles, self.style_dim, self.input_size = input_nc, n_styles, style_dim, input_size
        self.input_layer, self.body, chans = irse_trunk(num_layers, input_nc, width, se)
        ends = [sum(STAGE_UNITS[num_layers][: i + 1]) - 1 for i in range(4)]
        self.taps = (ends[1], ends[2], ends[3])  # c1 (1/4 px), c2 (1/8), c3 (1/16); 6, 20, 23 for IR-50

        spatial = [input_size // 16, input_size // 8, input_size // 4]
        self.styles = nn.ModuleList(
            GradualStyleBlock(chans[3], style_dim, spatial[(i >= COARSE) + (i >= MIDDLE)]) for i in range(n_styles)
        )
        self.latlayer1 = nn.Conv2d(chans[2], chans[3], 1)
        self.latlayer2 = nn.Conv2d(chans[1], chans[3], 1)

    @staticmethod
    def _upsample_add(x: Tensor, y: Tensor) -> Tensor:
        return F.interpolate(x, size=y.shape[-2:], mode="bilinear", align_corners=True) + y

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.input_nc or x.shape[-2:] != (self.input_size,) * 2:
            raise ValueError(
                f"expected input (B, {self.input_nc}, {self.input_size}, {self.input_size}), got {tuple(x.shape)}; "
                "resize the input or build the encoder with input_size/input_nc to match"
            )
        x = self.input_layer(x)
        feats = []
        for i, unit in enumerate(self.body):
            x = unit(x)
            if i in self.taps:
                feats.append(x)
        c1, c2, c3 = feats
        p2 = self._upsample_add(c3, self.latlayer1(c2))
        p1 = self._upsample_add(p2, self.latlayer2(c1))
        maps = (c3, p2, p1)
        codes = [head(maps[(i >= COARSE) + (i >= MIDDLE)]) for i, head in enumerate(self.styles)]
        return torch.stack(codes, dim=1)


class PSP(nn.Module):
    """pSp-StyleGAN (ISFRNet stage one): encoder -> W+ codes (+ latent_avg) -> generator -> image.

    ``decoder`` is a rosinality-style StyleGAN2 ``Generator`` (``isfr.models.stylegan2``) called as
    ``decoder([codes], input_is_latent=True, ...)``. Images larger than ``resolution`` are average
    pooled down to it (pSp's ``face_pool``: 1024 -> 256 for the official model). ``latent_avg``
    (``(style_dim,)`` or ``(n_styles, style_dim)``), when given, is added to every code as in pSp's
    ``start_from_latent_avg``.
    """

    def __init__(
        self, encoder: GradualStyleEncoder, decoder: nn.Module, latent_avg: Tensor | None = None, resolution: int = 256
    ):
        super().__init__()
        self.encoder, self.decoder, self.resolution = encoder, decoder, resolution
        n_latent = getattr(decoder, "n_latent", encoder.n_styles)
        if n_latent != encoder.n_styles:
            raise ValueError(
                f"encoder has n_styles={encoder.n_styles} but the generator takes {n_latent} codes; "
                f"build the encoder with n_styles={n_latent}"
            )
        if getattr(decoder, "size", resolution) < resolution:
            raise ValueError(f"generator size {decoder.size} is smaller than the working resolution {resolution}")
        if latent_avg is not None:
            latent_avg = latent_avg.detach().float().reshape(-1, encoder.style_dim)
            if latent_avg.shape[0] not in (1, encoder.n_styles):
                raise ValueError(
                    f"latent_avg must be ({encoder.style_dim},) or ({encoder.n_styles}, {encoder.style_dim}), "
                    f"got {tuple(latent_avg.shape)}"
                )
            latent_avg = latent_avg.expand(encoder.n_styles, -1).clone()
        self.register_buffer("latent_avg", latent_avg)  # None -> not a buffer, not in state_dict
        self.face_pool = nn.AdaptiveAvgPool2d(resolution)

    def encode(self, x: Tensor) -> Tensor:
        """W+ codes (B, n_styles, style_dim), ``latent_avg`` added when present."""
        codes = self.encoder(x)
        return codes if self.latent_avg is None else codes + self.latent_avg

    def decode(self, codes: Tensor, randomize_noise: bool = False, return_latents: bool = False, resize: bool = True):
        """Generate from W+ codes; returns image, or (image, latents) with ``return_latents``."""
        image, latents = self.decoder(
            [codes], input_is_latent=True, randomize_noise=randomize_noise, return_latents=return_latents
        )
        if resize and image.shape[-1] != self.resolution:
            image = self.face_pool(image)
        return (image, latents) if return_latents else image

    def forward(self, x: Tensor, return_latents: bool = False, randomize_noise: bool = False, resize: bool = True):
        """(B, input_nc, S, S) in [-1, 1] -> (B, 3, resolution, resolution) (+ W+ latents)."""
        return self.decode(self.encode(x), randomize_noise, return_latents, resize)

    @classmethod
    def from_official_checkpoint(
        cls, path: str | Path, resolution: int = 256, decoder: nn.Module | None = None
    ) -> "PSP":
        """Load an official pSp checkpoint (e.g. ``psp_ffhq_encode.pt``) with strict key matching.

        Format: ``{'state_dict': {'encoder.*', 'decoder.*'}, 'opts': {...}, 'latent_avg': (18, 512)}``.
        ``opts`` gives ``output_size`` (default 1024, as pSp's inference script assumes),
        ``encoder_type`` (must be GradualStyleEncoder), ``input_nc`` (3) and ``start_from_latent_avg``.
        ``decoder`` overrides the default config-f ``Generator(output_size, 512, 8)``. The official
        encoder takes 256 px RGB inputs; images come out pooled to ``resolution``.
        """
        ckpt = load_torch_file(
            path,
            f"Download 'StyleGAN Inversion' (psp_ffhq_encode.pt) from {PSP_FFHQ_ENCODE_URL} "
            "(pSp README, 'Pretrained Models') and save it as weights/psp_ffhq_encode.pt, or pass its path.",
        )
        if isinstance(ckpt, dict) and STANDIN_KEY in ckpt:
            refuse_standin(path, "pSp checkpoint")
        opts = dict(ckpt.get("opts") or {})
        state = ckpt.get("state_dict", ckpt)
        if opts.get("encoder_type", "GradualStyleEncoder") != "GradualStyleEncoder":
            raise ValueError(
                f"{path}: encoder_type={opts['encoder_type']!r}; only pSp's GradualStyleEncoder is supported"
            )
        output_size = int(opts.get("output_size", 1024))
        enc_sd = {k[len("encoder.") :]: v for k, v in state.items() if k.startswith("encoder.")}
        dec_sd = {k[len("decoder.") :]: v for k, v in state.items() if k.startswith("decoder.")}
        with torch.device("meta"):  # no 267 M-parameter random init; tensors come from the file
            encoder = GradualStyleEncoder(input_nc=int(opts.get("input_nc", 3)), n_styles=n_styles_for(output_size))
        check_state_dict(
            encoder, enc_sd, f"{path} (encoder.*)",
            f"opts say output_size={output_size} (n_styles={encoder.n_styles}), input_nc={encoder.input_nc}; "
            "the official encoder is IR-SE-50 (num_layers=50, width=1, style_dim=512, input_size=256)",
        )
        encoder.load_state_dict(enc_sd, strict=True, assign=True)
        if decoder is None:
            decoder = Generator(output_size, 512, 8, channel_multiplier=2)
        check_state_dict(
            decoder, dec_sd, f"{path} (decoder.*)",
            f"pSp's decoder is the config-f StyleGAN2 Generator(size={output_size}, style_dim=512, n_mlp=8, "
            "channel_multiplier=2); set opts['output_size'] or pass a matching decoder",
        )
        decoder.load_state_dict(dec_sd, strict=True)
        latent_avg = None
        if opts.get("start_from_latent_avg", True):  # pSp adds it to every code; without it pSp itself fails
            latent_avg = ckpt.get("latent_avg")
            if latent_avg is None:
                raise ValueError(f"{path}: opts say start_from_latent_avg=True but the file has no 'latent_avg' "
                                 "key (pSp adds it to every W+ code, so its images would be wrong); use the "
                                 "unmodified psp_ffhq_encode.pt from pSp's 'Pretrained Models'")
        return cls(encoder, decoder, latent_avg, resolution).eval()


def load_irse50_backbone(encoder: GradualStyleEncoder, path: str | Path) -> list[str]:
    """Initialise ``encoder.input_layer`` and ``encoder.body`` from an ArcFace IR-SE-50 file.

    ``model_ir_se50.pth`` (TreB1eN's InsightFace, shipped by pSp) holds unprefixed keys
    ``input_layer.*``, ``body.*`` and ``output_layer.*``; the last (the 512-d embedding head) is
    dropped, as pSp's ``load_state_dict(strict=False)`` does. For ``input_nc`` != 3 the RGB filters
    fill the first 3 input channels and the extra ones (e.g. the mask) start at zero; pSp instead
    skips the whole input layer for non-RGB inputs. Needs ``num_layers=50, width=1, se=True``.
    Returns the names of the loaded tensors (the heads and lateral convs stay as initialised).
    """
    sd = load_torch_file(
        path,
        f"{IRSE50_WHERE} and save it as weights/model_ir_se50.pth, or pass its path.",
    )
    sd = {k.removeprefix("module."): v for k, v in drop_standin_marker(sd, path).items()}
    parts = {n: {k[len(n) + 1 :]: v for k, v in sd.items() if k.startswith(n + ".")} for n in ("input_layer", "body")}
    w = parts["input_layer"].get("0.weight")
    if w is not None and w.ndim == 4 and w.shape[1] == 3 and encoder.input_nc != 3:
        padded = w.new_zeros(w.shape[0], encoder.input_nc, *w.shape[2:])
        padded[:, : min(3, encoder.input_nc)] = w[:, : encoder.input_nc]
        parts["input_layer"]["0.weight"] = padded
    hint = "the ArcFace backbone is IR-SE-50: build the encoder with num_layers=50, width=1, se=True"
    for name, part in parts.items():
        check_state_dict(getattr(encoder, name), part, f"{path} ({name}.*)", hint)
    for name, part in parts.items():
        getattr(encoder, name).load_state_dict(part, strict=True)
    return [f"{name}.{k}" for name, part in parts.items() for k in part]
