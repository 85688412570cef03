"""Train the stages of one preset in sequence (notebooks 02-05 and ``isfr train`` call these).

A finished run is loaded, not retrained, unless ``force=True``; each stage keeps its best checkpoint
on the val split (PSNR of the composite), and the next stage starts from it. Where runs live and
which variant reads which run: :mod:`isfr.experiments.runs`; scoring them: :mod:`isfr.experiments.experiment`.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import torch

from isfr.models.backbones import load_vgg16_features
from isfr.experiments.config import Preset
from isfr.data import build_from_config
from isfr.losses import LossConfig
from isfr.models.isfrnet import ISFRNet
from isfr.models.stylegan2 import Discriminator
from isfr.experiments.runs import (Budget, Variant, ablation_variants, as_variant, best_checkpoint, data_config, run_config,
                                   run_dir, schedule_status, stage_runs, uses_pretrained_stage1, val_batches, variant_preset,
                                   with_data_root)
from isfr.experiments.trained import build_disc, build_model, build_unet, load_stage1, trained_model
from isfr.core.utils import seeded

from isfr.training.checkpoint import read_checkpoint
from isfr.training.lock import RunBusyError
from isfr.training.loop import FitResult, TrainLoopConfig, fit
from isfr.training.progress import OverallProgress
from isfr.training.stages import IFRStage, PSPStage, SFRStage, StyleGANStage


def loop_config(preset: Preset, steps: int, batch_size: int, **kw: Any) -> TrainLoopConfig:
    s = preset.schedule
    return TrainLoopConfig(total_steps=steps, batch_size=batch_size, seed=preset.seed, log_every=s.log_every,
                           ckpt_every=s.ckpt_every, val_every=s.val_every, amp=s.amp, num_workers=s.num_workers,
                           sample_seeds=True, **kw)


def _vgg(preset: Preset):
    return load_vgg16_features("imagenet", allow_random=preset.allow_random_vgg, seed=preset.seed)


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


def train_psp(preset: Preset, data_root: str | None = None, force: bool = False, **loop_kw: Any) -> FitResult | None:
    """Stage 1b: the pSp encoder on masked faces, generator frozen (skipped for a frozen pretrained pSp)."""
    if uses_pretrained_stage1(preset) and not preset.psp.finetune:
        return None
    preset = with_data_root(preset, data_root)
    model = build_model(preset)
    if not uses_pretrained_stage1(preset):
        g = model.stage1.decoder
        g.load_state_dict(best_checkpoint(preset, "stylegan")["modules"]["g_ema"])
        with torch.no_grad():  # pSp's start_from_latent_avg
            gen = torch.Generator().manual_seed(preset.seed)
            model.stage1.latent_avg.copy_(g.mean_latent(4096, generator=gen).expand_as(model.stage1.latent_avg))
    s = preset.schedule
    stage = PSPStage(model, _vgg(preset), lr=s.lr, betas=s.betas, loss_cfg=preset.psp_loss)
    return fit(stage, build_from_config(data_config(preset), "train"),
               loop_config(preset, s.psp_steps, s.psp_batch_size, **loop_kw), run_dir(preset, "psp"),
               val_batches=val_batches(preset), config=run_config(preset), preset=preset.name, overwrite=force)


def train_ifr(preset: Preset, variant: Variant | str = "full", data_root: str | None = None, force: bool = False,
              budget: Budget = "main", **loop_kw: Any) -> FitResult:
    """Stage 2: IFR + D1 with eq. 5, stage 1 frozen."""
    v = as_variant(variant)
    preset = with_data_root(preset, data_root)
    p = variant_preset(preset, v)
    run, steps = stage_runs(preset, v, budget)["ifr"]
    model = load_stage1(build_model(preset, dataclasses.replace(v, use_sfr=False, use_ifr=True)), preset)
    s = p.schedule
    stage = IFRStage(model, build_disc(p), p.loss, lr=s.lr, betas=s.betas, mask_constraint=v.ifr_mask_constraint)
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
    v = as_variant(variant)
    preset = with_data_root(preset, data_root)
    p = variant_preset(preset, v)
    runs = stage_runs(preset, v, budget)
    model = load_stage1(build_model(preset, v), preset)
    config = run_config(p, preset)
    if v.use_ifr:
        ifr = best_checkpoint(preset, runs["ifr"][0])
        model.ifr.load_state_dict(ifr["modules"]["ifr"])
        config["trained_on"] = {"ifr_step": int(ifr["step"])}  # checked by trained_model
    s, steps = p.schedule, runs["sfr"][1]
    stage = SFRStage(model, build_disc(p), _vgg(p), p.loss, lr=s.sfr_lr or s.lr, betas=s.betas,
                     guess_dropout=s.sfr_guess_dropout)
    loop_kw = {"lr_decay": sfr_lr_decay(s, steps), **loop_kw}
    return fit(stage, build_from_config(data_config(p), "train"),
               loop_config(p, steps, s.batch_size, **loop_kw), run_dir(preset, runs["sfr"][0]),
               val_batches=val_batches(p), config=config, preset=preset.name, overwrite=force)


#: eq. 10 with its reconstruction term (eq. 6, L1 on the whole image) alone: the learned baseline's loss
L1_ONLY = LossConfig(lambda4_perceptual=0.0, lambda5_style=0.0, lambda6_tv=0.0, lambda7_adv=0.0)


def train_refiner(preset: Preset, folder: Path, generator: torch.nn.Module, loss: LossConfig, *, lr: float,
                  steps: int, guess: str = "none", upstream: Variant | str = "full", guess_dropout: float = 0.0,
                  key: str = "gen", seed: int | None = None,
                  lr_decay: tuple[int, float] | None = None, config: dict | None = None, overwrite: bool = False,
                  **loop_kw: Any) -> tuple[FitResult, ISFRNet | None]:
    """Train any refinement generator through :class:`SFRStage` on the preset's data, masks, precision and
    val pairs (the learned U-Net baseline, the rungs of :mod:`isfr.experiments.ladder`); ``guess="ifr"`` reads the
    trained stages 1-2 of the preset's main model (of ``upstream``, a variant), which are returned (frozen)
    for scoring."""
    seed = preset.seed if seed is None else seed
    upstream = trained_model(preset, upstream, upto="ifr", as_exported=False).cpu() if guess == "ifr" else None
    d2 = build_disc(preset, seed) if loss.uses_d2 else None
    stage = SFRStage(upstream, d2, _vgg(preset) if loss.uses_vgg else None, loss, lr=lr, betas=preset.schedule.betas,
                     generator=generator, key=key, guess=guess, guess_dropout=guess_dropout)
    cfg = loop_config(dataclasses.replace(preset, seed=seed), steps, preset.schedule.batch_size, lr_decay=lr_decay,
                      **loop_kw)
    res = fit(stage, build_from_config(data_config(preset), "train"), cfg, folder, val_batches=val_batches(preset),
              config=run_config(preset, **(config or {})), preset=preset.name, overwrite=overwrite)
    if res.best_checkpoint is not None:  # the val-best weights, as every stage keeps
        generator.load_state_dict(read_checkpoint(res.best_checkpoint)["modules"][key])
    return res, upstream


def train_unet(preset: Preset, data_root: str | None = None, force: bool = False, **loop_kw: Any) -> FitResult | None:
    """The learned baseline (ours, not the paper's): the plain U-Net on L1 alone for ``schedule.unet_steps``
    (None when 0), Adam at ``schedule.unet_lr`` x 0.1 for the last sixth, same data, masks, seed and precision."""
    preset, s = with_data_root(preset, data_root), preset.schedule
    if not s.unet_steps:
        return None
    decay = (s.unet_steps * 5 // 6, 0.1) if s.unet_steps >= 6 else None
    return train_refiner(preset, run_dir(preset, "unet"), build_unet(preset), L1_ONLY, lr=s.unet_lr,
                         steps=s.unet_steps, key="unet", lr_decay=decay, overwrite=force, **loop_kw)[0]


def train_variant(preset: Preset, variant: Variant | str = "full", data_root: str | None = None, force: bool = False,
                  budget: Budget = "main", **loop_kw: Any) -> dict[str, FitResult]:
    """The IFR and SFR runs a variant needs (stage 1 must be trained already); finished runs are loaded."""
    v, out = as_variant(variant), {}
    if v.use_ifr:
        out["ifr"] = train_ifr(preset, v, data_root, force, budget, **loop_kw)
        if not out["ifr"].finished:
            return out  # stopped by a time budget: the SFR run must wait for its IFR
    if v.use_sfr:
        out["sfr"] = train_sfr(preset, v, data_root, force, budget, **loop_kw)
    return out


def train_all(preset: Preset, variants: list[str] | None = None, data_root: str | None = None,
              main: bool = True, wait_s: float = 60.0, main_only: bool = False,
              **loop_kw: Any) -> list[tuple[str, FitResult | None]]:
    """Everything notebooks 02-05 train, in order: stage 1, the main model and the learned U-Net baseline
    (``main=False`` skips both), then the Table 1 variants at the ablation budget; ``main_only=True`` stops
    after the main model (stages 1-3), the model ``isfr inpaint`` uses. Returns ``(name, result)``
    per run: a :class:`FitResult`, or None where nothing is trained (a pretrained stage 1). A run another
    process holds (:class:`RunBusyError`) is left to it, with a printed line, and the next job taken, so two
    processes (one per core) share the list without planning; once the list is through, the skipped jobs are
    tried again every ``wait_s`` seconds until none is held: one the other process finished is then loaded,
    one it left or died on (the lock goes with the process) is trained here. Resumable: call again
    after a time-budget stop or a killed process."""
    preset = with_data_root(preset, data_root)
    if main_only:  # one bar over stages 1-3 (its time left counts the stages to come), beside each stage's own
        plan = [(run.split("_")[0], r["step"], r["total_steps"]) for run, r in schedule_status(preset).items()]
        with OverallProgress(plan, "main model", enabled=loop_kw.get("progress", True)):
            return _train_all(preset, variants, data_root, main, wait_s, main_only, **loop_kw)
    return _train_all(preset, variants, data_root, main, wait_s, main_only, **loop_kw)


def _train_all(preset: Preset, variants: list[str] | None, data_root: str | None, main: bool, wait_s: float,
               main_only: bool, **loop_kw: Any) -> list[tuple[str, FitResult | None]]:
    done: list[tuple[str, FitResult | None]] = []
    for name, fn in (("stylegan", train_stylegan), ("psp", train_psp)):
        r = fn(preset, data_root, **loop_kw)  # a busy stage 1 stops everything: every later run reads it
        done.append((name, r))
        if r is not None and not r.finished:
            return done
    if main_only:
        jobs = [("full", "main")]
    else:
        jobs = [("full", "main"), ("unet", "main")] * main + [(v, "ablation") for v in (variants or ablation_variants(preset))]
    first_pass = True
    while jobs:
        busy = []
        for v, budget in jobs:
            try:
                results = ({"unet": train_unet(preset, **loop_kw)} if v == "unet"
                           else train_variant(preset, v, data_root, budget=budget, **loop_kw))
            except RunBusyError as err:
                if first_pass:  # said once; later passes retry only these
                    print(f"train_all: {v}@{budget} skipped: {err}; tried again once the list is through", flush=True)
                busy.append((v, budget))
                continue
            for kind, r in results.items():
                done.append((kind if v == "unet" else f"{v}/{kind}@{budget}", r))
                if r is not None and not r.finished:
                    return done
        if busy:
            time.sleep(wait_s)
        jobs, first_pass = busy, False
    return done
