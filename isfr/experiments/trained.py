"""The preset's models: built untrained (same seed, same weights in every process), or assembled from the
val-best checkpoints of their runs (:mod:`isfr.experiments.runs`), and exported to one file for ``isfr inpaint``."""
from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import torch

from isfr.experiments.config import Preset
from isfr.data import data_identity
from isfr.models.discriminators import PatchDiscriminator
from isfr.models.isfrnet import ISFRNet, ISFRNetConfig
from isfr.models.unet import UNet
from isfr.core.paths import REPO_ROOT, portable, runs_dir
from isfr.experiments.runs import (Budget, Variant, as_variant, best_checkpoint, data_config, data_tag, run_key, schedule_status,
                                   stage_runs, steps_text, uses_pretrained_stage1, variant_preset, weights_identity,
                                   with_data_root)
from isfr.models.shipped import STORED_DTYPE, as_stored
from isfr.core.utils import seeded


def build_model(preset: Preset, variant: Variant | str = "full") -> ISFRNet:
    """An untrained pipeline of the preset's widths (stage 1 from the pSp file when configured)."""
    v = as_variant(variant)
    with seeded(preset.seed):  # same seed, same initial weights, in every process
        return ISFRNet(ISFRNetConfig.from_preset(variant_preset(preset, v), use_ifr=v.use_ifr, use_sfr=v.use_sfr),
                       root=REPO_ROOT)


def build_unet(preset: Preset) -> UNet:
    with seeded(preset.seed):
        return UNet(preset.unet)


def build_disc(preset: Preset, seed: int | None = None) -> PatchDiscriminator:
    """D1 / D2 (section 3.2-3.3) of the preset's widths, initialised from ``seed`` (default the preset's) + 1."""
    with seeded((preset.seed if seed is None else seed) + 1):
        return PatchDiscriminator(preset.disc)


def load_stage1(model: ISFRNet, preset: Preset) -> ISFRNet:
    """Load the trained pSp-StyleGAN (encoder, frozen EMA generator, latent_avg) into ``model.stage1``
    (no-op for a frozen pretrained pSp); a missing run is an error naming it."""
    if uses_pretrained_stage1(preset) and not preset.psp.finetune:
        return model
    model.stage1.load_state_dict(best_checkpoint(preset, "psp")["modules"]["psp"])  # encoder, generator, latent_avg
    return model


def generator_samples(preset: Preset, n: int = 8, seed: int = 0) -> torch.Tensor:
    """``n`` faces from the trained EMA generator at fixed latents (stage 1a, CPU presets)."""
    g = build_model(preset).stage1.decoder
    g.load_state_dict(best_checkpoint(preset, "stylegan")["modules"]["g_ema"])
    with torch.no_grad():
        z = torch.randn(n, g.style_dim, generator=torch.Generator().manual_seed(seed))
        return g.eval()([z], randomize_noise=False)[0].clamp(-1, 1)


def trained_model(preset: Preset, variant: Variant | str = "full", upto: str = "sfr", budget: Budget = "main",
                  as_exported: bool = True) -> ISFRNet:
    """The pipeline of ``variant`` with every stage's best checkpoint loaded, in eval mode;
    ``upto="ifr"`` stops after stage 2 (before SFR is trained). ``as_exported``: its weights rounded as an
    exported file stores them (:func:`isfr.models.shipped.as_stored`, fp16), so that what a table scores is what
    :func:`export_pipeline` writes and ``weights/`` ships; False keeps the checkpoints' fp32 (a training input)."""
    v = as_variant(variant)
    if upto == "ifr":
        v = dataclasses.replace(v, use_sfr=False)
    runs = stage_runs(preset, v, budget)
    model = load_stage1(build_model(preset, v), preset)
    ifr = best_checkpoint(preset, runs["ifr"][0]) if v.use_ifr else None
    if ifr is not None:
        model.ifr.load_state_dict(ifr["modules"]["ifr"])
    if v.use_sfr:
        sfr = best_checkpoint(preset, runs["sfr"][0])
        model.sfr.load_state_dict(sfr["modules"]["sfr"])
        trained_on = ((sfr.get("config") or {}).get("trained_on") or {}).get("ifr_step")
        if ifr is not None and trained_on is not None and int(trained_on) != int(ifr["step"]):
            warnings.warn(f"SFR run {runs['sfr'][0]!r} was trained on IFR step {trained_on}, but the IFR "
                          f"checkpoint now chosen is step {ifr['step']}: retrain SFR (force=True) to pair them",
                          RuntimeWarning, stacklevel=2)
    model = as_stored(model) if as_exported else model
    return model.eval().to("cuda" if torch.cuda.is_available() else "cpu")


def trained_unet(preset: Preset) -> UNet:
    """The learned baseline's val-best weights, in eval mode (a missing run is an error naming it)."""
    net = build_unet(preset)
    net.load_state_dict(best_checkpoint(preset, "unet")["modules"]["unet"])
    return net.eval()


def export_path(preset: Preset, variant: Variant | str = "full") -> Path:
    """``runs/<preset>/<data tag>/isfrnet_<variant><run key>.pt``: a customised preset or other data never
    overwrites the default's file."""
    return runs_dir(preset.name) / data_tag(preset) / f"isfrnet_{as_variant(variant).name}{run_key(preset)}.pt"


def export_pipeline(preset: Preset, variant: Variant | str = "full", path: str | Path | None = None,
                    data_root: str | None = None) -> Path:
    """Write the assembled pipeline to one file (:func:`export_path` by default) for ``isfr inpaint``, its
    weights in half precision (:data:`isfr.models.shipped.STORED_DTYPE`; read back as fp32),
    with the preset (its paths as records write them, :func:`isfr.core.paths.portable`), the data's identity, the
    steps of every stage and whether each run finished (``schedule``: :func:`schedule_status`)."""
    v, preset = as_variant(variant), with_data_root(preset, data_root)
    path = Path(path) if path else export_path(preset, v)
    schedule = schedule_status(preset, v)
    unfinished = [f"{run}: best checkpoint so far step {r['step']:,} of {r['total_steps']:,}"
                  for run, r in schedule.items() if not r["finished"]]
    if unfinished:
        warnings.warn(f"exporting an unfinished model ({'; '.join(unfinished)}): resume its training "
                      f"(`isfr train --preset {preset.name}`) and export again for the finished one",
                      RuntimeWarning, stacklevel=2)
    trained_model(preset, v).save(path, stored_dtype=STORED_DTYPE, preset=preset.name, variant=v.name,
                                  preset_config=portable(preset.to_dict()),
                                  data_identity=data_identity(data_config(preset)).as_dict(),
                                  weights_identity=weights_identity(preset), run_key=run_key(preset),
                                  steps=steps_text(preset, v), schedule=schedule)
    return path
