"""Train the stages of one preset in sequence and assemble the pipeline (notebooks 02-05 call these).

Run folders (git-ignored): ``runs/<preset>/<run>/`` with ``checkpoints/best.pt``, logs and
``done.json``; a finished run is loaded, not retrained, unless ``force=True``. Each stage picks its
best checkpoint on the val split (PSNR of the composite), and the next stage starts from it.

Variants are the rows of Table 1 (section 4.2) and our extras; they share every run they can
(e.g. the "no weighting" variant reuses the full model's IFR run).
"""
from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from isfr.backbones import VGG16_FILE, hub_checkpoint_path, load_vgg16_features
from isfr.config import Preset, get_preset
from isfr.data import build_from_config, data_identity
from isfr.losses import LossConfig
from isfr.models.discriminators import PatchDiscriminator
from isfr.models.isfrnet import ISFRNet, ISFRNetConfig
from isfr.models.stylegan2 import Discriminator
from isfr.models.unet import UNet
from isfr.paths import REPO_ROOT, figures_dir, runs_dir
from isfr.pretrained import standin_flags, weights_identity
from isfr.utils import seeded

from .checkpoint import read_checkpoint
from .loop import FitResult, TrainLoopConfig, fit
from .stages import IFRStage, PSPStage, SFRStage, StyleGANStage


@dataclass(frozen=True)
class Variant:
    """One trained configuration of the pipeline (a row of Table 1, or one of our extras)."""

    name: str
    description: str
    use_ifr: bool = True
    use_sfr: bool = True
    ifr_mask_constraint: bool = True  # False: section 4.2.1 trains IFR without the M of eq. 2
    overrides: dict[str, Any] = field(default_factory=dict)  # dotted preset overrides for IFR/SFR runs
    ifr_run: str = "ifr"
    sfr_run: str = "sfr"


VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("full", "pSp + IFR + SFR + weighting (full ISFRNet)"),
    Variant("psp_ifr", "pSp + IFR (section 4.2.1: no SFR, IFR without the mask constraint)",
            use_sfr=False, ifr_mask_constraint=False, ifr_run="ifr_nomask"),
    # eq. 1's weighting is kept ("training settings are the same as for the ISFRNet", 4.2.2) although
    # Table 1 leaves this row's Weighting box empty: an ambiguity, see isfr.paper_numbers
    Variant("psp_sfr", "pSp + SFR (section 4.2.2: E_C reads the stage-1 image)", use_ifr=False, sfr_run="sfr_noifr"),
    Variant("no_weighting", "pSp + IFR + SFR without weighting (section 4.2.3)",
            overrides={"sfr.weighting": "none"}, sfr_run="sfr_noweight"),
    Variant("weight_paper", "eq. 1 literal, w = 1/N_M (the paper's reading, where the preset reads it otherwise)",
            overrides={"sfr.weighting": "paper"}, sfr_run="sfr_literal"),
    Variant("weight_valid_fraction", "eq. 1 with w = 1 - N_M/N (ours)",
            overrides={"sfr.weighting": "valid_fraction"}, sfr_run="sfr_validfrac"),
    Variant("weight_inverse_ratio", "eq. 1 with w = r_min / max(N_M/N, r_min) (ours)",
            overrides={"sfr.weighting": "inverse_ratio"}, sfr_run="sfr_invratio"),
    Variant("leak_free", "full model trained on procedural masks, tested on NVIDIA masks (ours)",
            overrides={"data.mask_protocol": "leak_free"}, ifr_run="ifr_leakfree", sfr_run="sfr_leakfree"),
    Variant("ifr_hole", "eq. 2 normalised by the hole's element count (LossConfig.masked_l1_norm='hole'; ours): "
            "the IFR guess the ladder's rung ifr_hole reads", overrides={"loss.masked_l1_norm": "hole"},
            ifr_run="ifr_hole", sfr_run="sfr_ifrhole"),
    Variant("ifr_lr", "the IFR and D1 at Adam 1e-3 instead of section 4.1's 1e-4 (given for batch 1; ours): the "
            "guess the ladder's lr_1e-4 row says a batch-16 run needs", overrides={"schedule.lr": 1e-3},
            ifr_run="ifr_lr", sfr_run="sfr_ifrlr"),
)}


Budget = str  # "main" (the model of Table 2 and notebooks 03-04) or "ablation" (every row of Table 1)


def _variant(variant: Variant | str) -> Variant:
    return VARIANTS[variant] if isinstance(variant, str) else variant


def stage_runs(preset: Preset, variant: Variant | str = "full", budget: Budget = "main") -> dict[str, tuple[str, int]]:
    """Run folder and step count of the IFR and SFR runs of ``variant`` at ``budget``.

    The ablation budget (``schedule.ablation_ifr_steps`` / ``ablation_sfr_steps``) trains every row
    of Table 1 alike; when it equals the main schedule the runs are shared, otherwise they get an
    ``_abl`` suffix (the full model is then trained twice: once per budget)."""
    v, s = _variant(variant), preset.schedule
    if budget not in ("main", "ablation"):
        raise ValueError(f"budget must be 'main' or 'ablation', got {budget!r}")
    out = {}
    for kind, run, main_steps, abl_steps in (("ifr", v.ifr_run, s.ifr_steps, s.ablation_ifr_steps),
                                             ("sfr", v.sfr_run, s.sfr_steps, s.ablation_sfr_steps)):
        abl = budget == "ablation" and abl_steps is not None and abl_steps != main_steps
        out[kind] = (run + "_abl", abl_steps) if abl else (run, main_steps)
    return out


#: Table 1's rows (section 4.2) as the paper names them (:data:`isfr.paper_numbers.TABLE1`) -> our variant.
TABLE1_ROWS: dict[str, str] = {"pSp+IFR": "psp_ifr", "pSp+SFR": "psp_sfr",
                               "pSp+IFR+SFR w/o weighting": "no_weighting", "ISFRNet": "full"}
TABLE1_VARIANTS = list(TABLE1_ROWS.values())
#: our extras: the readings of eq. 1 (each variant sets ``sfr.weighting``), the mask protocol
WEIGHTING_VARIANTS = ("weight_paper", "weight_inverse_ratio", "weight_valid_fraction")


def ablation_variants(preset: Preset) -> list[str]:
    """Table 1's variants, then our extras: every reading of eq. 1 other than the preset's own (the full
    model already is that one), the leak-free mask protocol."""
    readings = [w for w in WEIGHTING_VARIANTS if VARIANTS[w].overrides["sfr.weighting"] != preset.sfr.weighting]
    return TABLE1_VARIANTS + readings + ["leak_free"]


def variant_preset(preset: Preset, variant: Variant | str) -> Preset:
    v = _variant(variant)
    return get_preset(preset.name, **{**_preset_overrides(preset), **v.overrides})


def _preset_overrides(preset: Preset) -> dict[str, Any]:
    """``preset`` as overrides of its named defaults (so a customised preset survives variant_preset)."""
    base, out = get_preset(preset.name), {}
    for f in dataclasses.fields(preset):
        a, b = getattr(preset, f.name), getattr(base, f.name)
        if dataclasses.is_dataclass(a):
            out.update({f"{f.name}.{g.name}": getattr(a, g.name) for g in dataclasses.fields(a)
                        if getattr(a, g.name) != getattr(b, g.name)})
        elif a != b:
            out[f.name] = a
    return out


# ------------------------------------------------------------------------------ data and loops


def provenance(preset: Preset, root: Any = None, steps: int | str | None = None) -> str:
    """One line for every figure and table (:func:`isfr.evaluation.provenance`), plus what makes the
    numbers weaker than the paper's: synthetic faces, random VGG features."""
    from isfr.evaluation import provenance as measured_here

    data = getattr(root, "kind", None)
    if data is not None:
        data = data_tag(preset if getattr(root, "path", None) is None else with_data_root(preset, root.path))
    flags = []
    if getattr(root, "kind", None) == "synthetic":
        flags.append("synthetic faces: not a result")
    if preset.allow_random_vgg and not hub_checkpoint_path(VGG16_FILE).exists():
        flags.append("random VGG features")
    flags += standin_flags(preset)
    line = measured_here(preset.name, preset.data.resolution, data, steps)
    return line + ("; " + ", ".join(flags) if flags else "")


def data_config(preset: Preset, data_root: str | None = None):
    return dataclasses.replace(preset.data, root=data_root or preset.data.root, seed=preset.seed)


def with_data_root(preset: Preset, data_root: Any = None) -> Preset:
    """``preset`` reading ``data_root`` (``preset.data.root`` stays when None): every run folder, export
    and provenance line of the returned preset then knows its data (:func:`data_tag`)."""
    if not data_root:
        return preset
    return dataclasses.replace(preset, data=dataclasses.replace(preset.data, root=str(data_root)))


def data_tag(preset: Preset) -> str:
    """``<kind>-<fingerprint>`` of the data the preset reads (:func:`isfr.data.data_identity`; the root is
    ``preset.data.root``, else ``$ISFR_DATA_ROOT``, else synthetic faces)."""
    return data_identity(data_config(preset)).tag


def val_dataset(preset: Preset, data_root: str | None = None, split: str = "val", images: int | str | None = None):
    """Fixed (image, mask) pairs of a split's manifest (``val_images`` / ``test_images`` images x 6
    buckets; ``images`` overrides the count, ``"all"`` takes every image of the split)."""
    s = preset.schedule
    n = images if images is not None else (s.val_images if split == "val" else s.test_images)
    whole = n == "all"
    if isinstance(n, str) and not whole:
        raise ValueError(f"images must be a count, None or 'all', got {n!r}")
    cfg = dataclasses.replace(data_config(preset, data_root), limit=None if whole else n)
    written = manifest_path(preset, split, data_root)  # notebook 01's record of this data
    if cfg.manifest is None and written.is_file() and n == (s.val_images if split == "val" else s.test_images):
        # it holds the preset's image count only
        cfg = dataclasses.replace(cfg, manifest=str(written))
    return build_from_config(cfg, split)


def h2h_dataset(preset: Preset, data_root: str | None = None):
    """The whole val split (notebook 04's head-to-head against the classical baseline), or its first
    ``schedule.h2h_val_images`` images where the schedule caps it (the paper preset's dry run)."""
    return val_dataset(preset, data_root, images=preset.schedule.h2h_val_images or "all")


def manifest_path(preset: Preset, split: str, data_root: str | None = None) -> Path:
    """``figures/<preset>/manifests/manifest_<split>.csv`` for the data the committed figures come from; a
    manifest of other data has its :func:`data_tag` in its name, so no run validates on another source's pairs."""
    folder = figures_dir(preset.name) / "manifests"
    tag = data_tag(with_data_root(preset, data_root))
    committed = folder / f"manifest_{split}.csv"
    if committed.is_file() and (folder / "data_identity.json").is_file():
        import json

        if json.loads((folder / "data_identity.json").read_text()).get("tag") == tag:
            return committed
    return folder / f"manifest_{split}_{tag}.csv"


def val_batches(preset: Preset, data_root: str | None = None, split: str = "val", images: int | None = None) -> list[dict]:
    """:func:`val_dataset`, batched: the same pairs for every stage and variant."""
    ds = val_dataset(preset, data_root, split, images)
    return list(DataLoader(ds, batch_size=max(1, preset.schedule.batch_size), shuffle=False))


def loop_config(preset: Preset, steps: int, batch_size: int, **kw: Any) -> TrainLoopConfig:
    s = preset.schedule
    return TrainLoopConfig(total_steps=steps, batch_size=batch_size, seed=preset.seed, log_every=s.log_every,
                           ckpt_every=s.ckpt_every, val_every=s.val_every, amp=s.amp, num_workers=s.num_workers,
                           sample_seeds=True, **kw)


def run_key(preset: Preset) -> str:
    """``""`` for a named preset as defined, else ``"@<hash>"`` of what was overridden (schedule fields
    aside, so a run can be extended) and of the sha256 of every pretrained file the run reads
    (:func:`isfr.pretrained.weights_identity`): runs of a customised preset, or of other weight files
    (stand-ins), never reuse the default's checkpoints."""
    import hashlib
    import json

    changed = {k: v for k, v in _preset_overrides(preset).items()
               if not k.startswith("schedule.") and k != "data.root"}  # the data is the folder above (data_tag)
    if changed.get("psp.checkpoint"):  # a pSp file: its content decides (below), not its path
        del changed["psp.checkpoint"]
    if weights := weights_identity(preset):  # sha256 of every pretrained file read (stand-ins never mix)
        changed["weights"] = weights
    if not changed:
        return ""
    return "@" + hashlib.sha256(json.dumps(changed, sort_keys=True, default=str).encode()).hexdigest()[:8]


def run_dir(preset: Preset, run: str) -> Path:
    """``runs/<preset>/<data tag>/<run>``, or ``.../<run>@<hash>`` for a customised preset (:func:`run_key`):
    a run of other data (:func:`data_tag`) or of other settings is never found, hence never reused."""
    return runs_dir(preset.name) / data_tag(preset) / (run + run_key(preset))


def run_config(preset: Preset, data: Preset | None = None, **extra: Any) -> dict[str, Any]:
    """What a run's ``config.json`` and checkpoints record: the preset and the identity of the data of ``data``
    (default ``preset``): a variant's runs (e.g. the leak-free one, which draws other training masks) live
    in the folder of the base preset's data and record that identity; their own settings are the config."""
    return {**preset.to_dict(), "data_identity": data_identity(data_config(data or preset)).as_dict(),
            "weights_identity": weights_identity(preset), **extra}


def _best(preset: Preset, run: str) -> dict:
    folder = run_dir(preset, run) / "checkpoints"
    path = folder / "best.pt" if (folder / "best.pt").exists() else folder / "last.pt"
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint for run {run!r} of preset {preset.name!r} on data {data_tag(preset)} "
                                f"in {folder}; train it first (`isfr train --preset {preset.name}` with the same "
                                f"data root, or notebooks 02-04)")
    ckpt = read_checkpoint(path)
    stored = ((ckpt.get("config") or {}).get("data_identity") or {}).get("tag")
    if stored is not None and stored != data_tag(preset):
        raise ValueError(f"{path} was trained on data {stored}, but this run reads {data_tag(preset)}: "
                         "train the upstream stage on the same data (same --data-root)")
    stored, now = (ckpt.get("config") or {}).get("weights_identity"), weights_identity(preset)
    if stored is not None and stored != now:
        raise ValueError(f"{path} was trained with the pretrained files {stored}, but this run reads {now} "
                         "(sha256 prefixes): retrain it with these files")
    return ckpt


def _vgg(preset: Preset):
    return load_vgg16_features("imagenet", allow_random=preset.allow_random_vgg, seed=preset.seed)


# ------------------------------------------------------------------------------ stage 1


def uses_pretrained_stage1(preset: Preset) -> bool:
    return bool(preset.psp.checkpoint)


def build_model(preset: Preset, variant: Variant | str = "full") -> ISFRNet:
    """An untrained pipeline of the preset's widths (stage 1 from the pSp file when configured)."""
    v = _variant(variant)
    with seeded(preset.seed):  # same seed, same initial weights, in every process
        return ISFRNet(ISFRNetConfig.from_preset(variant_preset(preset, v), use_ifr=v.use_ifr, use_sfr=v.use_sfr),
                       root=REPO_ROOT)


def _disc(p: Preset, seed: int | None = None) -> PatchDiscriminator:
    """D1 / D2 of the preset's widths, initialised from ``seed`` (default the preset's) + 1."""
    with seeded((p.seed if seed is None else seed) + 1):
        return PatchDiscriminator(p.disc)


def train_stylegan(preset: Preset, data_root: str | None = None, force: bool = False, **loop_kw: Any) -> FitResult | None:
    """Stage 1a (ours, CPU presets only): a small StyleGAN2 generator on the train split."""
    if uses_pretrained_stage1(preset):
        return None
    preset = with_data_root(preset, data_root)
    model = build_model(preset)
    g = model.stage1.decoder
    with seeded(preset.seed + 1):
        d = Discriminator(preset.stylegan.size, preset.stylegan.channel_multiplier, channel_max=preset.stylegan.channel_max)
    stage = StyleGANStage(g, d, lr=preset.schedule.stylegan_lr)
    s = preset.schedule
    cfg = loop_config(preset, s.stylegan_steps, s.stylegan_batch_size, **loop_kw)
    cfg = dataclasses.replace(cfg, val_every=None)
    return fit(stage, build_from_config(data_config(preset), "train"), cfg, run_dir(preset, "stylegan"),
               config=run_config(preset), preset=preset.name, overwrite=force)


def generator_samples(preset: Preset, n: int = 8, seed: int = 0) -> torch.Tensor:
    """``n`` faces from the trained EMA generator at fixed latents (stage 1a, CPU presets)."""
    g = build_model(preset).stage1.decoder
    g.load_state_dict(_best(preset, "stylegan")["modules"]["g_ema"])
    with torch.no_grad():
        z = torch.randn(n, g.style_dim, generator=torch.Generator().manual_seed(seed))
        return g.eval()([z], randomize_noise=False)[0].clamp(-1, 1)


def load_stage1(model: ISFRNet, preset: Preset) -> ISFRNet:
    """Load the trained pSp-StyleGAN (encoder, frozen EMA generator, latent_avg) into ``model.stage1``
    (no-op for a frozen pretrained pSp); a missing run is an error naming it."""
    if uses_pretrained_stage1(preset) and not preset.psp.finetune:
        return model
    model.stage1.load_state_dict(_best(preset, "psp")["modules"]["psp"])  # encoder, generator, latent_avg
    return model


def train_psp(preset: Preset, data_root: str | None = None, force: bool = False, **loop_kw: Any) -> FitResult | None:
    """Stage 1b: the pSp encoder on masked faces, generator frozen (skipped for a frozen pretrained pSp)."""
    if uses_pretrained_stage1(preset) and not preset.psp.finetune:
        return None
    preset = with_data_root(preset, data_root)
    model = build_model(preset)
    if not uses_pretrained_stage1(preset):
        g = model.stage1.decoder
        g.load_state_dict(_best(preset, "stylegan")["modules"]["g_ema"])
        with torch.no_grad():  # pSp's start_from_latent_avg
            gen = torch.Generator().manual_seed(preset.seed)
            model.stage1.latent_avg.copy_(g.mean_latent(4096, generator=gen).expand_as(model.stage1.latent_avg))
    s = preset.schedule
    stage = PSPStage(model, _vgg(preset), lr=s.lr, betas=s.betas, loss_cfg=preset.psp_loss)
    return fit(stage, build_from_config(data_config(preset), "train"),
               loop_config(preset, s.psp_steps, s.psp_batch_size, **loop_kw), run_dir(preset, "psp"),
               val_batches=val_batches(preset), config=run_config(preset), preset=preset.name, overwrite=force)


# ------------------------------------------------------------------------------ stages 2 and 3


def train_ifr(preset: Preset, variant: Variant | str = "full", data_root: str | None = None, force: bool = False,
              budget: Budget = "main", **loop_kw: Any) -> FitResult:
    """Stage 2: IFR + D1 with eq. 5, stage 1 frozen."""
    v = _variant(variant)
    preset = with_data_root(preset, data_root)
    p = variant_preset(preset, v)
    run, steps = stage_runs(preset, v, budget)["ifr"]
    model = load_stage1(build_model(preset, dataclasses.replace(v, use_sfr=False, use_ifr=True)), preset)
    s = p.schedule
    stage = IFRStage(model, _disc(p), p.loss, lr=s.lr, betas=s.betas, mask_constraint=v.ifr_mask_constraint)
    return fit(stage, build_from_config(data_config(p), "train"),
               loop_config(p, steps, s.batch_size, **loop_kw), run_dir(preset, run),
               val_batches=val_batches(p), config=run_config(p, preset), preset=preset.name, overwrite=force)


def sfr_lr_decay(schedule: Any, steps: int) -> tuple[int, float] | None:
    """``schedule.sfr_lr_decay`` for an SFR run of ``steps``: a run of other length (the ablation budget) decays
    at the same fraction of its steps."""
    decay = schedule.sfr_lr_decay
    if decay is None or steps == schedule.sfr_steps:
        return decay
    return max(1, decay[0] * steps // schedule.sfr_steps), decay[1]


def train_sfr(preset: Preset, variant: Variant | str = "full", data_root: str | None = None, force: bool = False,
              budget: Budget = "main", **loop_kw: Any) -> FitResult:
    """Stage 3: SFR + D2 with eq. 10, stages 1 and 2 frozen (IFR absent for the pSp+SFR variant)."""
    v = _variant(variant)
    preset = with_data_root(preset, data_root)
    p = variant_preset(preset, v)
    runs = stage_runs(preset, v, budget)
    model = load_stage1(build_model(preset, v), preset)
    config = run_config(p, preset)
    if v.use_ifr:
        ifr = _best(preset, runs["ifr"][0])
        model.ifr.load_state_dict(ifr["modules"]["ifr"])
        config["trained_on"] = {"ifr_step": int(ifr["step"])}  # checked by trained_model
    s, steps = p.schedule, runs["sfr"][1]
    stage = SFRStage(model, _disc(p), _vgg(p), p.loss, lr=s.sfr_lr or s.lr, betas=s.betas,
                     guess_dropout=s.sfr_guess_dropout)
    loop_kw = {"lr_decay": sfr_lr_decay(s, steps), **loop_kw}
    return fit(stage, build_from_config(data_config(p), "train"),
               loop_config(p, steps, s.batch_size, **loop_kw), run_dir(preset, runs["sfr"][0]),
               val_batches=val_batches(p), config=config, preset=preset.name, overwrite=force)


# ------------------------------------------------------------------------------ any refiner; the learned baseline

#: eq. 10 with its reconstruction term (eq. 6, L1 on the whole image) alone: the learned baseline's loss
L1_ONLY = LossConfig(lambda4_perceptual=0.0, lambda5_style=0.0, lambda6_tv=0.0, lambda7_adv=0.0)


def train_refiner(preset: Preset, folder: Path, generator: torch.nn.Module, loss: LossConfig, *, lr: float,
                  steps: int, guess: str = "none", upstream: Variant | str = "full", guess_dropout: float = 0.0,
                  key: str = "gen", seed: int | None = None,
                  lr_decay: tuple[int, float] | None = None, config: dict | None = None, overwrite: bool = False,
                  **loop_kw: Any) -> tuple[FitResult, ISFRNet | None]:
    """Train any refinement generator through :class:`SFRStage` on the preset's data, masks, precision and
    val pairs (the learned U-Net baseline, the rungs of :mod:`isfr.ladder`); ``guess="ifr"`` reads the
    trained stages 1-2 of the preset's main model (of ``upstream``, a variant), which are returned (frozen)
    for scoring."""
    seed = preset.seed if seed is None else seed
    upstream = trained_model(preset, upstream, upto="ifr").cpu() if guess == "ifr" else None
    d2 = _disc(preset, seed) if loss.uses_d2 else None
    stage = SFRStage(upstream, d2, _vgg(preset) if loss.uses_vgg else None, loss, lr=lr, betas=preset.schedule.betas,
                     generator=generator, key=key, guess=guess, guess_dropout=guess_dropout)
    cfg = loop_config(dataclasses.replace(preset, seed=seed), steps, preset.schedule.batch_size, lr_decay=lr_decay,
                      **loop_kw)
    res = fit(stage, build_from_config(data_config(preset), "train"), cfg, folder, val_batches=val_batches(preset),
              config=run_config(preset, **(config or {})), preset=preset.name, overwrite=overwrite)
    if res.best_checkpoint is not None:  # the val-best weights, as every stage keeps
        generator.load_state_dict(read_checkpoint(res.best_checkpoint)["modules"][key])
    return res, upstream


def build_unet(preset: Preset) -> UNet:
    with seeded(preset.seed):
        return UNet(preset.unet)


def train_unet(preset: Preset, data_root: str | None = None, force: bool = False, **loop_kw: Any) -> FitResult | None:
    """The learned baseline (ours, not the paper's): the plain U-Net on L1 alone for ``schedule.unet_steps``
    (None when 0), Adam at ``schedule.unet_lr`` x 0.1 for the last sixth, same data, masks, seed and precision."""
    preset, s = with_data_root(preset, data_root), preset.schedule
    if not s.unet_steps:
        return None
    decay = (s.unet_steps * 5 // 6, 0.1) if s.unet_steps >= 6 else None
    return train_refiner(preset, run_dir(preset, "unet"), build_unet(preset), L1_ONLY, lr=s.unet_lr,
                         steps=s.unet_steps, key="unet", lr_decay=decay, overwrite=force, **loop_kw)[0]


#: Table 2's name for the learned baseline (ours)
UNET_ROW = "U-Net, L1, equal CPU-hours (ours)"


def unet_steps_text(preset: Preset) -> str:
    """``"U-Net 20 steps (batch 4), val-best checkpoint 15"``: the learned baseline's provenance."""
    kept = _kept_step(preset, "unet")
    s = preset.schedule
    return f"U-Net {s.unet_steps} steps (batch {s.batch_size})" + (
        f", val-best checkpoint {kept}" if kept not in (None, s.unet_steps) else "")


def trained_unet(preset: Preset) -> UNet:
    """The learned baseline's val-best weights, in eval mode (a missing run is an error naming it)."""
    net = build_unet(preset)
    net.load_state_dict(_best(preset, "unet")["modules"]["unet"])
    return net.eval()


def train_variant(preset: Preset, variant: Variant | str = "full", data_root: str | None = None, force: bool = False,
                  budget: Budget = "main", **loop_kw: Any) -> dict[str, FitResult]:
    """The IFR and SFR runs a variant needs (stage 1 must be trained already); finished runs are loaded."""
    v, out = _variant(variant), {}
    if v.use_ifr:
        out["ifr"] = train_ifr(preset, v, data_root, force, budget, **loop_kw)
        if not out["ifr"].finished:
            return out  # stopped by a time budget: the SFR run must wait for its IFR
    if v.use_sfr:
        out["sfr"] = train_sfr(preset, v, data_root, force, budget, **loop_kw)
    return out


def trained_model(preset: Preset, variant: Variant | str = "full", upto: str = "sfr", budget: Budget = "main") -> ISFRNet:
    """The pipeline of ``variant`` with every stage's best checkpoint loaded, in eval mode;
    ``upto="ifr"`` stops after stage 2 (before SFR is trained)."""
    v = _variant(variant)
    if upto == "ifr":
        v = dataclasses.replace(v, use_sfr=False)
    runs = stage_runs(preset, v, budget)
    model = load_stage1(build_model(preset, v), preset)
    ifr = _best(preset, runs["ifr"][0]) if v.use_ifr else None
    if ifr is not None:
        model.ifr.load_state_dict(ifr["modules"]["ifr"])
    if v.use_sfr:
        sfr = _best(preset, runs["sfr"][0])
        model.sfr.load_state_dict(sfr["modules"]["sfr"])
        trained_on = ((sfr.get("config") or {}).get("trained_on") or {}).get("ifr_step")
        if ifr is not None and trained_on is not None and int(trained_on) != int(ifr["step"]):
            warnings.warn(f"SFR run {runs['sfr'][0]!r} was trained on IFR step {trained_on}, but the IFR "
                          f"checkpoint now chosen is step {ifr['step']}: retrain SFR (force=True) to pair them",
                          RuntimeWarning, stacklevel=2)
    return model.eval().to("cuda" if torch.cuda.is_available() else "cpu")


def export_path(preset: Preset, variant: Variant | str = "full") -> Path:
    """``runs/<preset>/<data tag>/isfrnet_<variant><run key>.pt``: a customised preset or other data never
    overwrites the default's file."""
    return runs_dir(preset.name) / data_tag(preset) / f"isfrnet_{_variant(variant).name}{run_key(preset)}.pt"


def export_pipeline(preset: Preset, variant: Variant | str = "full", path: str | Path | None = None,
                    data_root: str | None = None) -> Path:
    """Write the assembled pipeline to one file (:func:`export_path` by default) for ``isfr inpaint``,
    with the preset, the data's identity, the steps of every stage and whether each run finished
    (``schedule``: :func:`schedule_status`)."""
    v, preset = _variant(variant), with_data_root(preset, data_root)
    path = Path(path) if path else export_path(preset, v)
    trained_model(preset, v).save(path, preset=preset.name, variant=v.name, preset_config=preset.to_dict(),
                                  data_identity=data_identity(data_config(preset)).as_dict(),
                                  weights_identity=weights_identity(preset), run_key=run_key(preset),
                                  steps=steps_text(preset, v),
                                  schedule=schedule_status(preset, v))
    return path


def schedule_status(preset: Preset, variant: Variant | str = "full", budget: Budget = "main") -> dict[str, dict]:
    """Per run of ``variant`` (stage 1 included where it is trained here): steps of the checkpoint it keeps,
    the steps its schedule asks for, and whether the run finished (``done.json``)."""
    from .loop import _read_done

    v, s = _variant(variant), preset.schedule
    runs = ([("stylegan", s.stylegan_steps), ("psp", s.psp_steps)]
            if not uses_pretrained_stage1(preset) or preset.psp.finetune else [])
    runs += [stage_runs(preset, v, budget)[k] for k, on in (("ifr", v.use_ifr), ("sfr", v.use_sfr)) if on]
    out = {}
    for run, total in runs:
        done = _read_done(run_dir(preset, run)) or {}
        step = done.get("step")
        if step is None:
            try:
                step = int(_best(preset, run)["step"])
            except FileNotFoundError:
                step = 0
        out[run] = {"step": int(step), "total_steps": int(total), "finished": bool(done) and int(step) >= int(total)}
    return out


def train_all(preset: Preset, variants: list[str] | None = None, data_root: str | None = None,
              main: bool = True, **loop_kw: Any) -> list[tuple[str, FitResult | None]]:
    """Everything notebooks 02-05 train, in order: stage 1, the main model and the learned U-Net baseline
    (``main=False`` skips both, e.g. for a second process on the other core), then the Table 1 variants
    at the ablation budget.
    Resumable: call again after a time-budget stop or a killed session."""
    done: list[tuple[str, FitResult | None]] = []
    preset = with_data_root(preset, data_root)
    for name, fn in (("stylegan", train_stylegan), ("psp", train_psp)):
        r = fn(preset, data_root, **loop_kw)
        done.append((name, r))
        if r is not None and not r.finished:
            return done
    jobs = [("full", "main"), ("unet", "main")] * main + [(v, "ablation") for v in (variants or ablation_variants(preset))]
    for v, budget in jobs:
        results = ({"unet": train_unet(preset, **loop_kw)} if v == "unet"
                   else train_variant(preset, v, data_root, budget=budget, **loop_kw))
        for kind, r in results.items():
            done.append((kind if v == "unet" else f"{v}/{kind}@{budget}", r))
            if r is not None and not r.finished:
                return done
    return done


def seed_replicates(preset: Preset, dataset: Any, seeds: list[int] | tuple[int, ...] | None = None,
                    variant: Variant | str = "full", data_root: str | None = None, budget: Budget = "ablation",
                    root: Any = None, **loop_kw: Any) -> "Any":
    """Per-image scores of ``variant`` trained with the preset's seed and each of ``seeds`` (default
    ``schedule.spread_seeds``), every seed a whole training run (stage 1 included where it is trained
    here), all scored on the same ``dataset``; rows carry ``train_seed`` for
    :func:`isfr.evaluation.seed_spread`. Seeds already trained are loaded."""
    import pandas as pd

    v, preset = _variant(variant), with_data_root(preset, data_root)
    seeds = list(preset.schedule.spread_seeds if seeds is None else seeds)
    rows = []
    for s in [preset.seed] + [s for s in seeds if s != preset.seed]:
        p = get_preset(preset.name, **{**_preset_overrides(preset), "seed": s})
        if s != preset.seed:
            results = [train_stylegan(p, data_root, **loop_kw), train_psp(p, data_root, **loop_kw)]
            if all(r is None or r.finished for r in results):
                results += list(train_variant(p, v, data_root, budget=budget, **loop_kw).values())
            if not all(r is None or r.finished for r in results):
                raise RuntimeError(f"seed {s} of {v.name!r} stopped before the end of its schedule (time budget?); "
                                   "call again to resume it")
        rows.append(evaluate_variant(p, v, dataset, budget=budget, root=root).assign(train_seed=s))
    return pd.concat(rows, ignore_index=True)


def training_record(preset: Preset, variants: list[str] | None = None) -> "Any":
    """:func:`isfr.training.record.training_record` of every run of the preset: stage 1, the main
    model, then the ablation runs of ``variants`` (default :func:`ablation_variants`), each once."""
    from .record import training_record as record

    names = ["stylegan", "psp"] if not uses_pretrained_stage1(preset) or preset.psp.finetune else []
    names += ["unet"] if preset.schedule.unet_steps else []
    for v, budget in [("full", "main")] + [(v, "ablation") for v in (variants or ablation_variants(preset))]:
        runs = stage_runs(preset, v, budget)
        names += [runs[k][0] for k, use in (("ifr", VARIANTS[v].use_ifr), ("sfr", VARIANTS[v].use_sfr)) if use]
    return record([run_dir(preset, n) for n in dict.fromkeys(names)])


def steps_text(preset: Preset, variant: Variant | str = "full", budget: Budget = "main", upto: str = "sfr") -> str:
    """What a variant was trained with, up to stage ``upto`` ("stage1" | "ifr" | "sfr"), for
    provenance lines, e.g. ``"StyleGAN2 3000 + pSp 1500 steps + IFR 3000 + SFR 8000 steps (batch 16)"``."""
    v, runs, s = _variant(variant), stage_runs(preset, variant, budget), preset.schedule
    stage1 = "pretrained pSp" if uses_pretrained_stage1(preset) else f"StyleGAN2 {s.stylegan_steps} + pSp {s.psp_steps} steps"
    used = [k for k, on in (("ifr", v.use_ifr and upto in ("ifr", "sfr")), ("sfr", v.use_sfr and upto == "sfr")) if on]
    parts = [f"{k.upper()} {runs[k][1]}" for k in used]
    kept = [f"{k.upper()} {b}" for k in used if (b := _kept_step(preset, runs[k][0])) not in (None, runs[k][1])]
    return (stage1 + (f" + {' + '.join(parts)} steps" if parts else "") + f" (batch {s.batch_size})"
            + (f", val-best checkpoints {', '.join(kept)}" if kept else ""))


def _kept_step(preset: Preset, run: str) -> int | None:
    """Step of the checkpoint a finished run keeps (its best on val), from its ``done.json``; None if unknown."""
    from .loop import _read_done

    done = _read_done(run_dir(preset, run)) or {}
    best = done.get("best") if done.get("best_checkpoint") else None
    return int(best["step"]) if isinstance(best, dict) and "step" in best else None


def evaluate_variant(preset: Preset, variant: Variant | str, dataset: Any, *, name: str | None = None,
                     budget: Budget = "main", key: str = "output", composite: bool = True, root: Any = None,
                     metric_models: Any = None, upto: str = "sfr") -> "Any":
    """Per-image scores (:func:`isfr.evaluation.evaluate`) of a trained variant's ``key`` output,
    with a provenance line naming its steps and the commit its checkpoints were trained at."""
    from isfr.baselines import isfrnet_method
    from isfr.evaluation import evaluate

    v = _variant(variant)
    model = trained_model(preset, v, upto=upto, budget=budget)
    runs = stage_runs(preset, v, budget)
    commits = sorted({_best(preset, r)["git_commit"] for k, (r, _) in runs.items()
                      if (k == "ifr" and v.use_ifr) or (k == "sfr" and v.use_sfr and upto == "sfr")})
    source = provenance(preset, root, steps_text(preset, v, budget)) + f"; checkpoints trained at {', '.join(commits)}"
    return evaluate(isfrnet_method(model, key), dataset, name=name or v.name, composite=composite,
                    metric_models=metric_models, batch_size=max(8, preset.schedule.batch_size), progress=False,
                    source=source)
