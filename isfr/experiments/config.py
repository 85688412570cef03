"""Presets ``smoke`` / ``small`` / ``paper``: one code path, different parameters.

Each component keeps its own config dataclass beside its code (``IFRConfig`` in
``isfr.models.ifr``, ``LossConfig`` in ``isfr.losses`` ...), with the paper's values as defaults;
this module only composes them and states what differs per preset. Values the paper gives carry
their section or equation; everything else is marked "ours".

- ``smoke``: minutes on a 2-core CPU (CI and a first run); synthetic faces unless a data root is set;
  tiny widths; numbers from it mean nothing.
- ``small``: 64 px on real CelebA faces, bf16 autocast on a CPU that runs bf16 in hardware (fp32 elsewhere), a few
  CPU-hours in all on such a CPU.
- ``paper``: 256 px, full CelebA, a GPU; pretrained pSp (``psp_ffhq_encode.pt``) frozen as in
  section 3.1; the paper gives no step count, so the schedule is ours.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal, Union

from isfr.data import DataConfig
from isfr.losses import LossConfig, PSPLossConfig
from isfr.models.discriminators import DiscriminatorConfig
from isfr.models.ifr import IFRConfig
from isfr.models.sfr import SFRConfig
from isfr.models.stage1 import PSPConfig, StyleGANConfig
from isfr.models.unet import UNetConfig

PresetName = Literal["smoke", "small", "paper"]


@dataclass
class ScheduleConfig:
    """Training schedule. Section 4.1 gives Adam, lr 1e-4, default betas, batch 1; the rest is ours."""

    batch_size: int = 1  # section 4.1
    lr: float = 1e-4  # section 4.1
    betas: tuple[float, float] = (0.9, 0.999)  # section 4.1: "default momentum parameters"
    stylegan_steps: int = 0  # ours: only when no pretrained generator is given
    stylegan_batch_size: int = 16  # ours
    stylegan_lr: float = 2e-3  # ours (StyleGAN2's default)
    psp_steps: int = 0  # ours: 0 = use the pretrained encoder as is (paper)
    psp_batch_size: int = 8  # ours
    ifr_steps: int = 300_000  # ours (the paper gives no step count)
    sfr_steps: int = 300_000  # ours
    sfr_lr: float | None = None  # ours: Adam lr of SFR and D2; None = lr (section 4.1's 1e-4, given for batch 1)
    sfr_guess_dropout: float = 0.0  # ours: share of SFR training samples whose E_C reads I_I instead of the IFR
    # output (SFRStage.guess_dropout): the SFR cannot learn to copy a poor guess; 0 = the paper (E_C always reads it)
    sfr_lr_decay: tuple[int, float] | None = None  # ours: (step, factor): SFR and D2 at lr x factor from that step
    # (an ablation run of ablation_sfr_steps decays at the same fraction of its steps)
    ablation_ifr_steps: int | None = None  # ours: steps of every Table 1 row; None = the main schedule
    ablation_sfr_steps: int | None = None  # ours
    amp: Literal["auto", "none", "bf16", "fp16"] = "fp16"  # ours: CUDA AMP on the GPU; "auto" (isfr.core.utils.resolve_amp):
    # fp16 on CUDA, bf16 autocast on a CPU that runs bf16 in hardware, else fp32 (bf16 emulated on AVX2 is 12-45x slower)
    log_every: int = 100
    ckpt_every: int = 5_000
    val_every: int = 5_000
    val_images: int = 40  # ours: val images (x 6 buckets = manifest pairs) used to pick checkpoints
    test_images: int | None = None  # None = the whole test split (scored once)
    h2h_val_images: int | None = None  # ours: images of the whole-val head-to-head (notebook 04); None = all (dry run: 2)
    spread_seeds: tuple[int, ...] = ()  # ours: extra training seeds of the full model (ablation budget), notebook 05
    unet_steps: int = 0  # ours: steps of the learned baseline (isfr.models.unet, L1 only); 0 = none. Chosen so that
    # its CPU-hours equal those of the main model's stages 1-3 ("U-Net, L1, equal CPU-hours", Table 2)
    unet_lr: float = 1e-3  # ours: Adam lr of the learned baseline (x 0.1 for its last sixth of steps)
    num_workers: int = 2


@dataclass
class Preset:
    name: PresetName
    data: DataConfig = field(default_factory=DataConfig)
    stylegan: StyleGANConfig = field(default_factory=StyleGANConfig)
    psp: PSPConfig = field(default_factory=PSPConfig)
    ifr: IFRConfig = field(default_factory=IFRConfig)
    sfr: SFRConfig = field(default_factory=SFRConfig)
    unet: UNetConfig = field(default_factory=lambda: UNetConfig(img_size=256))  # the learned baseline (ours)
    disc: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    psp_loss: PSPLossConfig = field(default_factory=PSPLossConfig)  # stage-1 encoder training (pSp's losses)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    allow_random_vgg: bool = False  # ours: True only where ImageNet VGG-16 cannot be had (smoke, small)
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _paper() -> Preset:
    # ours: 2,000 test images x 6 buckets = 12,000 scored pairs; None scores all 19,962 official test
    # images (~120k pairs: hours of CPU for SSIM and the dlib identity metric)
    # eq. 10's perceptual 120 / style 0.05 read as swapped (LGNet's second stage weighs them 0.05 / 120 beside
    # the same TV 0.1): README, "Decisions where the paper is ambiguous"; style_perceptual_weights="paper" prints
    return Preset(name="paper", loss=LossConfig(style_perceptual_weights="lgnet"),
                  schedule=ScheduleConfig(test_images=2_000))


def _small() -> Preset:
    r = 64
    return Preset(
        name="small",
        data=DataConfig(resolution=r),
        stylegan=StyleGANConfig(size=r, style_dim=128, n_mlp=4, channel_multiplier=1, channel_max=64),
        psp=PSPConfig(input_nc=4, width=0.25, checkpoint=None),
        ifr=IFRConfig(ngf=32, img_size=r),
        # the recipe the equal-compute ladder supports (figures/small/ladder.md; README, "The small recipe"):
        # the ladder's two-encoder U-Net as SFR (rung 2enc), batch norm (rung batchnorm_ifr), eq. 1 read as
        # w = 1 - N_M/N (rung w_valid_fraction), E_C reading I_I for half the training samples (rung guess_dropout),
        # Adam 1e-3 (rung lr_1e-4), no random-VGG terms (rung +perceptual: they pay less than more steps)
        sfr=SFRConfig(layout="unet", ngf=24, norm="batch", weighting="valid_fraction", img_size=r),
        unet=UNetConfig(ngf=24, img_size=r),
        disc=DiscriminatorConfig(ndf=32, img_size=r),
        loss=LossConfig(lambda4_perceptual=0.0, lambda5_style=0.0),  # eqs. 7-8 need ImageNet VGG: not here
        schedule=ScheduleConfig(
            # SFR 12,000 steps (2026-12-04, commit ed818fb; 9,000 on 2026-12-02, commit 1b90924; 6,000 in the recipe
            # freeze of 2026-12-01, commit d5c2f8e, which missed the bar on val): per step the SFR's val score tracks
            # the U-Net's (28.06 vs 28.05 at step 8,000), and the bar needs about +0.5 dB over biharmonic on val, which
            # the U-Net's curve puts past step 9,000 (README, "The small recipe"; figures/small/RUN.md)
            batch_size=16, stylegan_steps=3_000, psp_steps=1_500, ifr_steps=3_000, sfr_steps=12_000,
            sfr_lr=1e-3, sfr_lr_decay=(10_000, 0.1), sfr_guess_dropout=0.5,
            ablation_ifr_steps=1_500, ablation_sfr_steps=1_000,
            # = the retrained main model's stages 1-3 on an AMD EPYC with AVX2 and no hardware bf16 (fp32; set on
            # 2026-12-04, commit 70f5ac0): StyleGAN2 2.60 + pSp 0.44 + IFR 1.42 CPU-h logged, SFR 12,000 x 1.8 s ~ 6.0
            # projected, ~10.5 in all; the U-Net had 3.84 h in its first 10,625 steps and runs 0.85 s per step beside
            # the SFR: 10,625 + 6.6 h / 0.85 s ~ 38,700 -> 39,000 (29,700 in the freeze of commit d5c2f8e: that main
            # model's 4.08 CPU-h at 0.494 s per step on an AMD EPYC with hardware bf16)
            unet_steps=39_000,
            amp="auto", log_every=25, ckpt_every=250, val_every=500, val_images=40, test_images=None, num_workers=0,
        ),
        allow_random_vgg=True,
    )


def _smoke() -> Preset:
    r = 64
    return Preset(
        name="smoke",
        data=DataConfig(resolution=r, limit=64, synthetic_train=64, synthetic_eval=8),
        stylegan=StyleGANConfig(size=r, style_dim=32, n_mlp=2, channel_multiplier=1, channel_max=16),
        psp=PSPConfig(input_nc=4, width=0.125, checkpoint=None),
        ifr=IFRConfig(ngf=8, img_size=r),
        sfr=SFRConfig(ngf=8, img_size=r),
        unet=UNetConfig(ngf=8, img_size=r),
        disc=DiscriminatorConfig(ndf=8, img_size=r),
        schedule=ScheduleConfig(
            batch_size=4, stylegan_steps=30, stylegan_batch_size=4, psp_steps=20, psp_batch_size=4,
            ifr_steps=20, sfr_steps=20, amp="none", log_every=5, ckpt_every=10, val_every=10,
            val_images=2, test_images=4, num_workers=0, spread_seeds=(1,), unet_steps=20,
        ),
        allow_random_vgg=True,
    )


_BUILDERS = {"smoke": _smoke, "small": _small, "paper": _paper}
PRESETS: tuple[str, ...] = tuple(_BUILDERS)


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """``["sfr.weighting=none", "seed=1"]`` -> ``{"sfr.weighting": "none", "seed": 1}`` (values read as
    Python literals when they parse, else kept as strings): the CLI's ``--set``."""
    import ast

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects FIELD=VALUE (e.g. sfr.weighting=none), got {item!r}")
        try:
            out[key.strip()] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            out[key.strip()] = raw
    return out


class PresetFieldError(KeyError, ValueError):
    """An override naming no preset field, or a value its field does not take (one line: the field and the
    valid choices). A ``KeyError`` for callers that look fields up, a ``ValueError`` for the command line."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


@lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def describe_type(hint: Any) -> str:
    """``int | None``, ``one of 'a', 'b'``, ``tuple[int, ...]``: a field's type as the error message says it."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        return " | ".join(describe_type(a) for a in args)
    if hint is type(None):
        return "None"
    if origin is tuple:
        return f"tuple[{', '.join('...' if a is Ellipsis else describe_type(a) for a in args)}]"
    return getattr(hint, "__name__", str(hint))


def fits(value: Any, hint: Any) -> bool:
    """Whether ``value`` is one a field annotated ``hint`` takes (``Literal`` choices, unions, ``int`` / ``float``
    / ``bool`` / ``str``, tuples (a list is taken for a tuple), dataclasses); types not listed pass."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if origin in (Union, types.UnionType):
        return any(fits(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is tuple or hint is tuple:
        if not isinstance(value, (tuple, list)):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(fits(v, args[0]) for v in value)
        return not args or (len(args) == len(value) and all(fits(v, a) for v, a in zip(value, args)))
    if dataclasses.is_dataclass(hint):
        return isinstance(value, hint)
    return True


def _apply(obj: Any, key: str, value: Any, full: str = "") -> Any:
    """``obj`` with the dotted field ``key`` set (frozen dataclasses are replaced, not mutated); a field that does
    not exist, or a value its annotation does not take, is a :class:`PresetFieldError` naming the choices."""
    full = full or key
    head, _, rest = key.partition(".")
    names = [f.name for f in dataclasses.fields(obj)] if dataclasses.is_dataclass(obj) else []
    if head not in names:
        where = full[:len(full) - len(key)].rstrip(".")
        if not names:
            raise PresetFieldError(f"unknown preset field {full!r}: {where} is a value, not a group of fields")
        choices = ", ".join([*names, "resolution"] if not where else names)
        raise PresetFieldError(f"unknown preset field {full!r}; the fields {'of ' + where if where else 'at the top'}"
                               f" are {choices}")
    if rest:
        return dataclasses.replace(obj, **{head: _apply(getattr(obj, head), rest, value, full)})
    hint = _hints(type(obj))[head]
    if not fits(value, hint):
        raise PresetFieldError(f"{full}={value!r}: {full} takes {describe_type(hint)}")
    return dataclasses.replace(obj, **{head: value})


def with_resolution(preset: Preset, resolution: int) -> Preset:
    """``preset`` at another working resolution: every field that must agree with it (data, IFR, SFR,
    discriminator; the CPU presets' own StyleGAN2 too, which is trained at the working resolution)."""
    if resolution < 8 or resolution & (resolution - 1):
        raise ValueError(f"resolution must be a power of two >= 8, got {resolution}")
    out = dataclasses.replace(
        preset, data=dataclasses.replace(preset.data, resolution=resolution),
        ifr=dataclasses.replace(preset.ifr, img_size=resolution),
        sfr=dataclasses.replace(preset.sfr, img_size=resolution),
        unet=dataclasses.replace(preset.unet, img_size=resolution),
        disc=dataclasses.replace(preset.disc, img_size=resolution if preset.disc.img_size is not None else None))
    if preset.stylegan.size == preset.data.resolution:  # a generator trained here, at the working resolution
        out = dataclasses.replace(out, stylegan=dataclasses.replace(preset.stylegan, size=resolution))
    return out


def check_resolution(preset: Preset) -> None:
    """Raise ``ValueError`` naming the fields when the working resolution is not the same everywhere."""
    r = preset.data.resolution
    bad = {k: v for k, v in (("ifr.img_size", preset.ifr.img_size), ("sfr.img_size", preset.sfr.img_size),
                             ("unet.img_size", preset.unet.img_size), ("disc.img_size", preset.disc.img_size))
           if v is not None and v != r}
    if preset.stylegan.size < r:
        bad["stylegan.size"] = preset.stylegan.size
    if bad:
        raise ValueError(f"preset {preset.name!r}: data.resolution={r} but "
                         + ", ".join(f"{k}={v}" for k, v in bad.items())
                         + f"; override `resolution={r}` instead, which sets them together")


def get_preset(name: str, **overrides: Any) -> Preset:
    """The named preset, with dotted overrides: ``get_preset("small", **{"sfr.weighting": "none"})``;
    ``resolution=N`` sets every resolution field at once (:func:`with_resolution`), before the rest."""
    if name not in _BUILDERS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(_BUILDERS)}")
    preset = _BUILDERS[name]()
    overrides = dict(overrides)
    if "resolution" in overrides:
        r = overrides.pop("resolution")
        if not fits(r, int):
            raise PresetFieldError(f"resolution={r!r}: resolution takes a power of two >= 8")
        preset = with_resolution(preset, r)
    for key, value in overrides.items():
        preset = _apply(preset, key, value)
    check_resolution(preset)
    return preset
