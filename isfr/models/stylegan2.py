"""StyleGAN2 generator and discriminator (Karras et al. 2020, "Analyzing and Improving the Image
Quality of StyleGAN"), in plain PyTorch: the decoder of the pSp-StyleGAN stage (paper section 3.1).

Parameter/buffer names and shapes equal those of rosinality/stylegan2-pytorch ``model.py``
(``Generator``, ``Discriminator``), so ``g_ema`` of ``stylegan2-ffhq-config-f.pt`` (size 1024,
style_dim 512, n_mlp 8, channel_multiplier 2) and pSp's ``decoder.*`` load with ``strict=True``.
Conventions matched (numerics, not only names):

* equalized learning rate: weights are stored N(0, 1) (``EqualLinear``: N(0, 1) / lr_mul) and
  scaled at run time by ``1/sqrt(fan_in) * lr_mul`` (fan_in = in_ch * k * k for convs); linear bias
  is multiplied by ``lr_mul``; mapping network = PixelNorm + ``n_mlp`` EqualLinear(lr_mul=0.01,
  fused lrelu); modulation = EqualLinear(style_dim, in_ch, bias_init=1); other biases init 0.
* fused bias + leaky ReLU: ``leaky_relu(x + b, 0.2) * sqrt(2)``.
* modulated conv: ``w = scale * weight * style``; demodulation ``w * rsqrt(sum(w**2) + 1e-8)``
  over (in, kh, kw); batched as one grouped conv (groups = batch) like rosinality's default, or
  (batches, ``fused=False``) by scaling activations and outputs. ToRGB: 1x1, no demodulation,
  bias (1, 3, 1, 1).
* blur/FIR: kernel ``[1, 3, 3, 1]`` outer product, normalised to sum 1, times ``factor**2`` when it
  follows an upsampling; ``upfirdn2d`` semantics of NVIDIA/rosinality (zero-insert, pad both axes by
  (pad0, pad1), true convolution, subsample). Pads: upsampling 3x3 conv = conv_transpose2d
  (stride 2, no padding) then blur pad (1, 1); ToRGB skip upsample pad (2, 1); discriminator
  downsampling blur pad (2, 2) before a 3x3 stride-2 conv and (1, 1) before a 1x1 one.
* noise injection: per-layer scalar ``weight`` init 0, noise (B, 1, H, W) broadcast over channels,
  fixed buffers ``noises.noise_{i}`` (res ``2**((i + 5) // 2)``) used when ``randomize_noise=False``.
* ``n_latent = 2 * log2(size) - 2``; W+ input (B, n_latent, style_dim) with ``input_is_latent``.
* discriminator: ResBlocks ``(conv + skip) / sqrt(2)``, minibatch stddev (group min(B, 4), 1
  feature, eps 1e-8), final EqualLinear pair.

Implementation notes (speed on CPU, no compiled extension): the FIR filter is a depthwise
``conv2d`` (symmetric pads go into the conv's ``padding``, no pad copy); the x2 FIR upsampling of
the ToRGB skip is a depthwise ``conv_transpose2d``; bias/noise/activation run in place on fresh
tensors; on CPU resolutions >= 64 run in ``channels_last`` (oneDNN's fast path; NCHW is faster
below). Config-f 1024, batch 1, fp32, ``torch.inference_mode()``, one thread on the dev machine
(AMD EPYC, AVX-512), 2026-11-25: 1.06 s CPU time per image vs 4.5 s for rosinality's model with
its pure-torch ``upfirdn2d_native`` (min of 4; best 2-thread wall time seen under load 1.55 s).

Checked on 2026-11-25 against a CPU transcription of rosinality's classes (same state dict, fixed
noise buffers, random non-zero biases/noise strengths; not part of this repo): max abs output
difference 1.7e-5 (size 256) / 4.8e-5 (size 1024, outputs up to ~18) at batch 1, 2.3e-5 /
2.8e-5 at batch 2, the size of the reference's own float32 error vs. a float64 run (2.0e-5 /
7.0e-5); discriminator identical (0.0).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from isfr.models.checkpoint_utils import check_state_dict, load_torch_file

__all__ = [
    "Generator",
    "Discriminator",
    "stylegan2_channels",
    "upfirdn2d",
    "fused_leaky_relu",
    "load_rosinality_generator",
    "infer_generator_config",
]

SQRT2 = math.sqrt(2.0)
CHANNELS_LAST_MIN_RES = 64  # CPU: run resolutions >= this in channels_last (faster there, slower below)
CONFIG_F_HINT = (
    "Get stylegan2-ffhq-config-f.pt (rosinality/stylegan2-pytorch README, 'Pretrained Checkpoints', "
    "or convert NVIDIA's official stylegan2-ffhq-config-f.pkl with that repo's convert_weight.py) "
    "and pass its path."
)


# ----------------------------------------------------------------------------- functional ops
def make_kernel(k: Sequence[float] | Tensor) -> Tensor:
    """2-D FIR kernel: outer product of a 1-D kernel (or a 2-D one as is), normalised to sum 1."""
    k = torch.as_tensor(k, dtype=torch.float32)
    if k.ndim == 1:
        k = k[None, :] * k[:, None]
    return k / k.sum()


def upfirdn2d(x: Tensor, kernel: Tensor, up: int = 1, down: int = 1, pad: tuple[int, int] = (0, 0)) -> Tensor:
    """Upsample by zero insertion, pad (pad0, pad1) on both axes (negative crops), convolve with
    ``kernel`` (true convolution, per channel), keep every ``down``-th sample; NVIDIA semantics.

    Output side ``(H * up + pad0 + pad1 - k) // down + 1``. Runs as one depthwise conv (or
    transposed conv for ``up > 1``) without pad copies when the pads allow it.
    """
    c, k = x.shape[1], kernel.shape[-1]
    kernel = kernel.to(x.dtype)
    p0, p1 = pad
    if up > 1:
        p, op = k - 1 - p0, p1 - p0 + up - 1  # conv_transpose padding / output_padding
        if kernel.shape[0] == k and p >= 0 and 0 <= op < up:
            w = kernel.expand(c, 1, k, k)
            out = F.conv_transpose2d(x, w, stride=up, padding=p, output_padding=op, groups=c)
            return out if down == 1 else out[..., ::down, ::down]
        ones = x.new_ones(c, 1, 1, 1)  # generic path: explicit zero insertion
        x = F.pad(F.conv_transpose2d(x, ones, stride=up, groups=c), [0, up - 1, 0, up - 1])
    w = kernel.flip([0, 1]).expand(c, 1, *kernel.shape)
    if p0 == p1 and p0 >= 0:
        return F.conv2d(x, w, stride=down, padding=p0, groups=c)
    return F.conv2d(F.pad(x, [p0, p1, p0, p1]), w, stride=down, groups=c)


def _can_inplace(x: Tensor) -> bool:
    return not (torch.is_grad_enabled() and x.requires_grad)


def fused_leaky_relu(
    x: Tensor, bias: Tensor | None = None, negative_slope: float = 0.2, scale: float = SQRT2, inplace: bool = False
) -> Tensor:
    """``leaky_relu(x + bias, negative_slope) * scale`` (bias per channel, dim 1).

    ``inplace=True`` may overwrite ``x`` (use only on fresh tensors); autograd-safe either way.
    """
    if bias is not None:
        b = bias.view(1, -1, *([1] * (x.ndim - 2)))
        x = x.add_(b) if inplace else x + b
        inplace = True  # x is now ours
    if inplace and _can_inplace(x):
        return F.leaky_relu_(x, negative_slope).mul_(scale)
    return F.leaky_relu(x, negative_slope).mul_(scale)  # leaky_relu saves its input, not output


def stylegan2_channels(
    channel_multiplier: int = 2, channels: Mapping[int, int] | None = None, channel_max: int | None = None
) -> dict[int, int]:
    """Width per resolution: rosinality's table, then ``channels`` overrides, then the ``channel_max`` cap."""
    cm = channel_multiplier
    table = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * cm, 128: 128 * cm, 256: 64 * cm, 512: 32 * cm, 1024: 16 * cm}
    table.update({int(r): int(c) for r, c in (channels or {}).items()})
    if channel_max is not None:
        table = {r: min(c, int(channel_max)) for r, c in table.items()}
    return table


def _log2_size(size: int, table: Mapping[int, int], who: str) -> int:
    log_size = int(math.log2(size)) if size > 0 else 0
    if size < 8 or 2**log_size != size:
        raise ValueError(f"{who}: size must be a power of two >= 8 (32..1024 typical), got {size}")
    missing = [2**i for i in range(2, log_size + 1) if 2**i not in table]
    if missing:
        raise ValueError(f"{who}: no channel count for resolutions {missing}; pass channels={{res: width}}")
    return log_size


# ----------------------------------------------------------------------------- layers
class PixelNorm(nn.Module):
    """Normalise each latent to unit RMS over dim 1 (eps 1e-8)."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(torch.mean(x**2, dim=1, keepdim=True) + 1e-8)


class Blur(nn.Module):
    """FIR filter (``upfirdn2d`` without resampling); kernel times ``upsample_factor**2`` after an upsampling."""

    def __init__(self, kernel: Sequence[float], pad: tuple[int, int], upsample_factor: int = 1):
        super().__init__()
        self.register_buffer("kernel", make_kernel(kernel) * (upsample_factor**2))
        self.pad = tuple(pad)

    def forward(self, x: Tensor) -> Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """x``factor`` FIR upsampling (ToRGB skip path); kernel times ``factor**2``."""

    def __init__(self, kernel: Sequence[float], factor: int = 2):
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_kernel(kernel) * (factor**2))
        p = self.kernel.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x: Tensor) -> Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class EqualConv2d(nn.Module):
    """Conv2d with equalized learning rate (weight N(0,1) scaled by 1/sqrt(fan_in) at run time)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, padding: int = 0, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        self.scale = 1 / math.sqrt(in_ch * kernel_size**2)
        self.stride, self.padding = stride, padding

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, stride=self.stride, padding=self.padding)


class EqualLinear(nn.Module):
    """Linear layer with equalized lr and learning-rate multiplier ``lr_mul``; optional fused lrelu."""

    def __init__(
        self, in_dim: int, out_dim: int, bias: bool = True, bias_init: float = 0.0, lr_mul: float = 1.0,
        activation: str | None = None,
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.scale, self.lr_mul, self.activation = (1 / math.sqrt(in_dim)) * lr_mul, lr_mul, activation

    def forward(self, x: Tensor) -> Tensor:
        b = None if self.bias is None else self.bias * self.lr_mul
        if self.activation:
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), b, inplace=True)
        return F.linear(x, self.weight * self.scale, b)


class ModulatedConv2d(nn.Module):
    """Modulated (and optionally demodulated) conv, Karras et al. 2020 eq. 1-3.

    ``fused=True`` (rosinality) folds the per-sample styles into the weights and runs one grouped
    conv (groups = batch); ``fused=False`` scales the activations and the output instead (same
    maths, one shared weight; faster for batches on CPU); ``None``: fused only for batch 1.
    ``upsample``: conv_transpose2d stride 2 then blur; ``downsample``: blur then stride-2 conv.
    """

    def __init__(
        self, in_ch: int, out_ch: int, kernel_size: int, style_dim: int, demodulate: bool = True,
        upsample: bool = False, downsample: bool = False, blur_kernel: Sequence[float] = (1, 3, 3, 1),
        fused: bool | None = True,
    ):
        super().__init__()
        self.in_channel, self.out_channel, self.kernel_size = in_ch, out_ch, kernel_size
        self.upsample, self.downsample, self.demodulate, self.fused = upsample, downsample, demodulate, fused
        if upsample:
            p = (len(blur_kernel) - 2) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + 1, p // 2 + 1), upsample_factor=2)
        if downsample:
            p = (len(blur_kernel) - 2) + (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2, p // 2))
        self.scale = 1 / math.sqrt(in_ch * kernel_size**2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(1, out_ch, in_ch, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_ch, bias_init=1)

    def extra_repr(self) -> str:
        return f"{self.in_channel}, {self.out_channel}, {self.kernel_size}, upsample={self.upsample}, downsample={self.downsample}"

    def _conv(self, x: Tensor, w: Tensor, groups: int) -> Tensor:
        """x: (N, groups*in, H, W); w: (groups*out, in, k, k)."""
        if self.upsample:
            k = self.kernel_size
            w = w.view(groups, self.out_channel, -1, k, k).transpose(1, 2).reshape(-1, self.out_channel, k, k)
            return F.conv_transpose2d(x, w, stride=2, groups=groups)
        if self.downsample:
            return F.conv2d(x, w, stride=2, groups=groups)
        return F.conv2d(x, w, padding=self.padding, groups=groups)

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        b, c = x.shape[:2]
        s = self.modulation(style) * self.scale  # equalized-lr scale folded into the style
        if self.downsample:
            x = self.blur(x)
        if not (self.fused if self.fused is not None else b == 1):
            out = self._conv(x * s.view(b, c, 1, 1), self.weight[0], 1)
            if self.demodulate:  # sum_{i,kh,kw} (w s_i)^2 = (s^2) @ (sum_{kh,kw} w^2)^T
                wsq = torch.linalg.vector_norm(self.weight[0], dim=(2, 3)).square()
                d = (s.square() @ wsq.t() + 1e-8).rsqrt().view(b, -1, 1, 1)
                out = out.mul_(d) if _can_inplace(out) else out * d
        else:
            weight = self.weight * s.view(b, 1, c, 1, 1)
            if self.demodulate:  # rsqrt(sum w^2 + eps) over (in, kh, kw)
                n = torch.linalg.vector_norm(weight, dim=(2, 3, 4))
                d = (n.square() + 1e-8).rsqrt().view(b, self.out_channel, 1, 1, 1)
                weight = weight.mul_(d) if _can_inplace(weight) else weight * d
            weight = weight.view(b * self.out_channel, c, self.kernel_size, self.kernel_size)
            if b == 1:  # no reshape: it would disturb channels_last strides
                out = self._conv(x, weight, 1)
            else:
                out = self._conv(x.reshape(1, b * c, *x.shape[2:]), weight, b)
                out = out.reshape(b, self.out_channel, *out.shape[2:])
        return self.blur(out) if self.upsample else out


class NoiseInjection(nn.Module):
    """``x + weight * noise``; noise (B or 1, 1, H, W) is drawn N(0, 1) when not given."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(
        self, x: Tensor, noise: Tensor | None = None, inplace: bool = False, generator: torch.Generator | None = None
    ) -> Tensor:
        if noise is None:
            noise = torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype, generator=generator)
        n = self.weight * noise
        return x.add_(n) if inplace else x + n


class ConstantInput(nn.Module):
    """Learned constant (1, C, 4, 4), repeated over the batch."""

    def __init__(self, channel: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channel, size, size))

    def forward(self, x: Tensor) -> Tensor:
        return self.input.repeat(x.shape[0], 1, 1, 1)


class FusedLeakyReLU(nn.Module):
    """Per-channel bias + leaky ReLU(0.2) + gain sqrt(2)."""

    def __init__(self, channel: int, bias: bool = True, negative_slope: float = 0.2, scale: float = SQRT2):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channel)) if bias else None
        self.negative_slope, self.scale = negative_slope, scale

    def forward(self, x: Tensor, inplace: bool = False) -> Tensor:
        return fused_leaky_relu(x, self.bias, self.negative_slope, self.scale, inplace=inplace)


class StyledConv(nn.Module):
    """ModulatedConv2d -> noise -> bias + lrelu."""

    def __init__(
        self, in_ch: int, out_ch: int, kernel_size: int, style_dim: int, upsample: bool = False,
        blur_kernel: Sequence[float] = (1, 3, 3, 1), demodulate: bool = True,
    ):
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, kernel_size, style_dim, demodulate, upsample, blur_kernel=blur_kernel)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_ch)

    def forward(
        self, x: Tensor, style: Tensor, noise: Tensor | None = None, generator: torch.Generator | None = None
    ) -> Tensor:
        out = self.noise(self.conv(x, style), noise, inplace=True, generator=generator)  # conv output is fresh
        return self.activate(out, inplace=True)


class ToRGB(nn.Module):
    """1x1 modulated conv (no demodulation) + bias, plus the FIR-upsampled skip image."""

    def __init__(self, in_ch: int, style_dim: int, upsample: bool = True, blur_kernel: Sequence[float] = (1, 3, 3, 1)):
        super().__init__()
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_ch, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: Tensor, style: Tensor, skip: Tensor | None = None) -> Tensor:
        out = self.conv(x, style).add_(self.bias)
        return out if skip is None else out.add_(self.upsample(skip))


# ----------------------------------------------------------------------------- generator
class Generator(nn.Module):
    """StyleGAN2 generator (config-f layout); state dict identical to rosinality's ``Generator``.

    ``channels`` / ``channel_max`` give reduced-width variants of the same class (e.g.
    ``Generator(64, 128, 4, channel_multiplier=1, channel_max=128)`` for CPU-scale runs).
    ``channels_last``: on CPU run resolutions >= 64 in channels_last memory format (faster; the
    returned image is contiguous NCHW either way). ``fused_modconv``: see ``ModulatedConv2d.fused``
    (default None: grouped-conv trick for batch 1, activation scaling for larger batches).
    """

    def __init__(
        self, size: int, style_dim: int = 512, n_mlp: int = 8, channel_multiplier: int = 2,
        blur_kernel: Sequence[float] = (1, 3, 3, 1), lr_mlp: float = 0.01,
        channels: Mapping[int, int] | None = None, channel_max: int | None = None, channels_last: bool = True,
        fused_modconv: bool | None = None,
    ):
        super().__init__()
        self.size, self.style_dim, self.n_mlp, self.channels_last = size, style_dim, n_mlp, channels_last
        self.channels_last_min_res = CHANNELS_LAST_MIN_RES
        self.channels = stylegan2_channels(channel_multiplier, channels, channel_max)
        self.log_size = _log2_size(size, self.channels, "Generator")
        self.num_layers = (self.log_size - 2) * 2 + 1
        self.n_latent = self.log_size * 2 - 2
        self.style = nn.Sequential(
            PixelNorm(), *(EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activation="fused_lrelu") for _ in range(n_mlp))
        )
        ch = self.channels
        self.input = ConstantInput(ch[4])
        self.conv1 = StyledConv(ch[4], ch[4], 3, style_dim, blur_kernel=blur_kernel)
        self.to_rgb1 = ToRGB(ch[4], style_dim, upsample=False)
        self.convs, self.upsamples, self.to_rgbs = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        self.noises = nn.Module()
        for i in range(self.num_layers):
            r = 2 ** ((i + 5) // 2)
            self.noises.register_buffer(f"noise_{i}", torch.randn(1, 1, r, r))
        in_ch = ch[4]
        for i in range(3, self.log_size + 1):
            out_ch = ch[2**i]
            self.convs.append(StyledConv(in_ch, out_ch, 3, style_dim, upsample=True, blur_kernel=blur_kernel))
            self.convs.append(StyledConv(out_ch, out_ch, 3, style_dim, blur_kernel=blur_kernel))
            self.to_rgbs.append(ToRGB(out_ch, style_dim, blur_kernel=blur_kernel))
            in_ch = out_ch
        for m in self.modules():
            if isinstance(m, ModulatedConv2d):
                m.fused = fused_modconv

    def make_noise(self, generator: torch.Generator | None = None) -> list[Tensor]:
        """One fresh N(0, 1) noise map (1, 1, r, r) per layer."""
        dev = self.input.input.device
        return [
            torch.randn(1, 1, 2 ** ((i + 5) // 2), 2 ** ((i + 5) // 2), device=dev, generator=generator)
            for i in range(self.num_layers)
        ]

    @torch.no_grad()
    def mean_latent(self, n_latent: int, generator: torch.Generator | None = None) -> Tensor:
        """Mean W of ``n_latent`` mapped z ~ N(0, I): (1, style_dim), the truncation centre."""
        z = torch.randn(n_latent, self.style_dim, device=self.input.input.device, generator=generator)
        return self.style(z).mean(0, keepdim=True)

    def get_latent(self, z: Tensor) -> Tensor:
        """Mapping network z -> w."""
        return self.style(z)

    def forward(
        self,
        styles: Sequence[Tensor],
        return_latents: bool = False,
        inject_index: int | None = None,
        truncation: float = 1,
        truncation_latent: Tensor | None = None,
        input_is_latent: bool = False,
        noise: Sequence[Tensor | None] | None = None,
        randomize_noise: bool = True,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Image (B, 3, size, size), roughly in [-1, 1], and the W+ codes if ``return_latents``.

        ``styles``: list of z (B, style_dim), or of w / W+ (B, [n_latent,] style_dim) with
        ``input_is_latent``; two entries mix styles at ``inject_index`` (random if None).
        ``generator`` seeds the per-call noise and the random ``inject_index``.
        """
        if not input_is_latent:
            styles = [self.style(s) for s in styles]
        if noise is None:
            noise = (
                [None] * self.num_layers
                if randomize_noise
                else [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]
            )
        if truncation < 1:
            if truncation_latent is None:
                raise ValueError("truncation < 1 needs truncation_latent (e.g. generator.mean_latent(4096))")
            styles = [truncation_latent + truncation * (s - truncation_latent) for s in styles]
        if len(styles) < 2:
            s = styles[0]
            latent = s if s.ndim == 3 else s.unsqueeze(1).repeat(1, self.n_latent, 1)
        else:
            if inject_index is None:
                inject_index = int(torch.randint(1, self.n_latent, (1,), generator=generator))
            latent = torch.cat(
                [styles[0].unsqueeze(1).repeat(1, inject_index, 1),
                 styles[1].unsqueeze(1).repeat(1, self.n_latent - inject_index, 1)], 1
            )
        if latent.shape[1] != self.n_latent:
            raise ValueError(f"Generator(size={self.size}) needs {self.n_latent} W+ codes, got {tuple(latent.shape)}")

        cl_from = self.channels_last_min_res if self.channels_last and latent.device.type == "cpu" else 1 << 30
        out = self.input(latent)
        out = self.conv1(out, latent[:, 0], noise[0], generator)
        skip = self.to_rgb1(out, latent[:, 1])
        for j, to_rgb in enumerate(self.to_rgbs):
            i = 2 * j + 1
            if 2 ** (j + 3) == cl_from:  # oneDNN: channels_last wins at high res, NCHW at low res
                out, skip = (t.contiguous(memory_format=torch.channels_last) for t in (out, skip))
            out = self.convs[2 * j](out, latent[:, i], noise[i], generator)
            out = self.convs[2 * j + 1](out, latent[:, i + 1], noise[i + 1], generator)
            skip = to_rgb(out, latent[:, i + 2], skip)
        image = skip.contiguous()
        return image, (latent if return_latents else None)


# ----------------------------------------------------------------------------- discriminator
class ConvLayer(nn.Sequential):
    """[Blur] -> EqualConv2d -> [FusedLeakyReLU]; downsampling = blur then stride-2 conv."""

    def __init__(
        self, in_ch: int, out_ch: int, kernel_size: int, downsample: bool = False,
        blur_kernel: Sequence[float] = (1, 3, 3, 1), bias: bool = True, activate: bool = True,
    ):
        layers: list[nn.Module] = []
        if downsample:
            p = (len(blur_kernel) - 2) + (kernel_size - 1)
            layers.append(Blur(blur_kernel, pad=((p + 1) // 2, p // 2)))
            stride, padding = 2, 0
        else:
            stride, padding = 1, kernel_size // 2
        layers.append(EqualConv2d(in_ch, out_ch, kernel_size, stride, padding, bias=bias and not activate))
        if activate:
            layers.append(FusedLeakyReLU(out_ch, bias=bias))
        super().__init__(*layers)
        self.padding = padding


class ResBlock(nn.Module):
    """Two 3x3 convs (second downsamples) plus a 1x1 downsampling skip, summed and divided by sqrt(2)."""

    def __init__(self, in_ch: int, out_ch: int, blur_kernel: Sequence[float] = (1, 3, 3, 1)):
        super().__init__()
        self.conv1 = ConvLayer(in_ch, in_ch, 3, blur_kernel=blur_kernel)
        self.conv2 = ConvLayer(in_ch, out_ch, 3, downsample=True, blur_kernel=blur_kernel)
        self.skip = ConvLayer(in_ch, out_ch, 1, downsample=True, blur_kernel=blur_kernel, activate=False, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / SQRT2


class Discriminator(nn.Module):
    """StyleGAN2 residual discriminator; state dict identical to rosinality's ``Discriminator``.

    Returns logits (B, 1). The minibatch-stddev group is ``min(B, 4)``, so B must be divisible by it.
    """

    def __init__(
        self, size: int, channel_multiplier: int = 2, blur_kernel: Sequence[float] = (1, 3, 3, 1),
        channels: Mapping[int, int] | None = None, channel_max: int | None = None,
    ):
        super().__init__()
        ch = self.channels = stylegan2_channels(channel_multiplier, channels, channel_max)
        log_size = _log2_size(size, ch, "Discriminator")
        convs: list[nn.Module] = [ConvLayer(3, ch[size], 1)]
        in_ch = ch[size]
        for i in range(log_size, 2, -1):
            convs.append(ResBlock(in_ch, ch[2 ** (i - 1)], blur_kernel))
            in_ch = ch[2 ** (i - 1)]
        self.convs = nn.Sequential(*convs)
        self.stddev_group, self.stddev_feat = 4, 1
        self.final_conv = ConvLayer(in_ch + 1, ch[4], 3)
        self.final_linear = nn.Sequential(
            EqualLinear(ch[4] * 4 * 4, ch[4], activation="fused_lrelu"), EqualLinear(ch[4], 1)
        )

    def forward(self, x: Tensor) -> Tensor:
        out = self.convs(x)
        b, c, h, w = out.shape
        g = min(b, self.stddev_group)
        if b % g:
            raise ValueError(f"Discriminator: batch {b} must be divisible by the stddev group {g}")
        sd = out.reshape(g, -1, self.stddev_feat, c // self.stddev_feat, h, w)
        sd = torch.sqrt(sd.var(0, unbiased=False) + 1e-8).mean([2, 3, 4], keepdim=True).squeeze(2)
        out = torch.cat([out, sd.repeat(g, 1, h, w)], 1)
        return self.final_linear(self.final_conv(out).reshape(b, -1))


# ----------------------------------------------------------------------------- checkpoints
def infer_generator_config(state_dict: Mapping[str, Tensor]) -> dict:
    """Generator kwargs (size, style_dim, n_mlp, channel_multiplier or channels) read off a
    rosinality-layout state dict's shapes."""
    try:
        n_rgbs = len({k.split(".")[1] for k in state_dict if k.startswith("to_rgbs.")})
        style_dim = int(state_dict["conv1.conv.modulation.weight"].shape[1])
        n_mlp = len({k.split(".")[1] for k in state_dict if k.startswith("style.")})
        ch = {4: int(state_dict["input.input"].shape[1])}
        for j in range(n_rgbs):
            ch[2 ** (j + 3)] = int(state_dict[f"convs.{2 * j}.conv.weight"].shape[1])
    except KeyError as e:
        raise ValueError(f"Not a rosinality StyleGAN2 Generator state dict (no key {e})") from None
    cfg: dict = {"size": 2 ** (n_rgbs + 2), "style_dim": style_dim, "n_mlp": n_mlp}
    cm = ch[64] // 256 if 64 in ch else 2
    if cm >= 1 and all(ch[r] == c for r, c in stylegan2_channels(cm).items() if r in ch):
        cfg["channel_multiplier"] = cm
    else:
        cfg["channels"] = ch
    return cfg


def load_rosinality_generator(
    path: str | os.PathLike, key: str | None = "g_ema", weights_only: bool = True, **kwargs
) -> Generator:
    """Build a ``Generator`` and load a rosinality checkpoint (``{key: state_dict, ...}``;
    ``key=None``: the file is the state dict) with ``strict=True``.

    Options not given in ``kwargs`` (size, style_dim, n_mlp, channel_multiplier) are inferred from
    the tensor shapes; ``lr_mlp`` (not stored) defaults to 0.01. A ``latent_avg`` entry, if present,
    is attached as the plain attribute ``generator.latent_avg`` (else None).
    """
    ckpt = load_torch_file(path, CONFIG_F_HINT, weights_only=weights_only)
    if key is None:
        sd = ckpt
    elif not isinstance(ckpt, Mapping) or key not in ckpt:
        found = list(ckpt)[:8] if isinstance(ckpt, Mapping) else type(ckpt).__name__
        raise ValueError(f"{os.fspath(path)!r} has no entry {key!r} (found {found}); pass key=... (or key=None)")
    else:
        sd = ckpt[key]
    inferred = infer_generator_config(sd)
    width_keys = ("channel_multiplier", "channels", "channel_max")
    cfg = {k: v for k, v in inferred.items() if not (k in width_keys and any(w in kwargs for w in width_keys))}
    cfg.update(kwargs)
    g = Generator(**cfg)
    diffs = [f"{k}={inferred[k]!r} (you passed {kwargs[k]!r})" for k in inferred if k in kwargs and kwargs[k] != inferred[k]]
    hint = (
        "The checkpoint's shapes say " + ", ".join(f"{k}={v!r}" for k, v in inferred.items()) + ". "
        + (f"Change {'; '.join(diffs)}." if diffs else "Change size / channel_multiplier / style_dim / n_mlp to match.")
    )
    check_state_dict(g, sd, repr(os.fspath(path)) + (f"[{key!r}]" if key else ""), hint)
    g.load_state_dict(sd, strict=True)
    g.latent_avg = ckpt.get("latent_avg") if isinstance(ckpt, Mapping) and key is not None else None
    return g
