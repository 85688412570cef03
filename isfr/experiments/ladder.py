"""The equal-compute ladder (ours): from a plain U-Net to ISFRNet's SFR, one ingredient per rung.

Every rung trains 3,000 steps at batch 16 from the same seed on the ``small`` preset's data, masks and
precision (``schedule.amp="auto"``: bf16 autocast on a CPU that runs bf16 in hardware, as every committed rung
did; fp32 elsewhere), through the same loop as every stage (:func:`isfr.training.loop.fit`,
:class:`isfr.training.stages.SFRStage` with a generator of the rung's choosing), keeps its val-best
checkpoint (the 240 checkpoint-selection pairs), and is scored once on the whole val split (780 images
x 6 buckets, composited, uint8). A rung names its parent (the rung it changes one thing of); the table
gives each rung's PSNR / SSIM at 20-40 % and 40-60 %, the paired difference against its parent and
against ``inpaint_biharmonic`` with a 95 % bootstrap CI, and its CPU-hours (one process at one torch
thread; upstream stages included where the rung reads the IFR output). Three seeds of the base rung
measure seed noise.

Run it with ``isfr ladder`` (resumable: finished rungs are loaded; ``--rungs`` picks some), which
writes ``figures/small/ladder.{md,csv,png}`` and each rung's logs and per-image scores under
``figures/small/ladder_runs/<rung>/`` (never its checkpoints).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from isfr.experiments.config import Preset, get_preset
from isfr.experiments.experiment import upstream_hours
from isfr.losses import LossConfig
from isfr.models.sfr import SFRGenerator
from isfr.models.unet import UNet
from isfr.experiments.runs import data_tag, provenance, val_dataset, with_data_root
from isfr.experiments.pipeline import L1_ONLY as _L1
from isfr.experiments.pipeline import train_ifr, train_refiner
from isfr.core.utils import autocast, seeded

STEPS = 3_000
LR_DECAY = (2_500, 0.1)  # every rung: lr x 0.1 for its last 500 steps
#: eq. 10 with only its reconstruction term (eq. 6, L1 on the whole image): the base rung's loss
L1_ONLY = {k: v for k, v in dataclasses.asdict(_L1).items() if k.startswith("lambda") and v == 0}


@dataclass(frozen=True)
class Rung:
    """One ladder rung: a generator, what its second encoder reads, a loss, a learning rate."""

    name: str
    change: str  # the one ingredient it changes of its parent, in words
    parent: str | None = None
    generator: Literal["unet", "sfr"] = "unet"
    unet: dict = field(default_factory=dict)  # UNetConfig overrides (img_size from the preset)
    sfr: dict = field(default_factory=dict)  # SFRConfig overrides of the preset's SFR (generator="sfr")
    loss: dict = field(default_factory=lambda: dict(L1_ONLY))  # LossConfig fields
    guess: Literal["none", "masked", "ifr"] = "none"  # E_C's input: none (one encoder), I_I again, IFR output
    upstream: str = "full"  # guess="ifr": the pipeline variant whose stages 1-2 make the guess (isfr.experiments.runs.VARIANTS)
    guess_dropout: float = 0.0  # guess="ifr": share of training samples whose E_C reads I_I instead (SFRStage)
    lr: float = 1e-3
    seed: int = 0
    steps: int = STEPS  # every rung but the calibration run

    @property
    def lr_decay(self) -> tuple[int, float]:
        """lr x 0.1 for the last sixth of the steps (step 2,500 of 3,000)."""
        return self.steps * LR_DECAY[0] // STEPS, LR_DECAY[1]

    def key(self) -> str:
        """Hash of everything that decides the run (its folder name carries it)."""
        spec = {k: v for k, v in dataclasses.asdict(self).items() if k not in ("name", "change", "parent")}
        if spec["steps"] == STEPS:  # the ladder's own step count is in the hash below
            del spec["steps"]
        for k, default in (("upstream", "full"), ("guess_dropout", 0.0)):
            if spec[k] == default:  # rungs defined before the field keep their folders
                del spec[k]
        return hashlib.sha256(json.dumps([spec, STEPS, LR_DECAY], sort_keys=True).encode()).hexdigest()[:8]


def _r(name: str, change: str, parent: str | None, base: Rung | None = None, **kw: Any) -> Rung:
    if base is None:
        return Rung(name, change, parent, **kw)
    merged = {k: ({**getattr(base, k), **kw.pop(k)} if k in ("unet", "sfr", "loss") and k in kw else getattr(base, k))
              for k in ("unet", "sfr", "loss")}
    return dataclasses.replace(base, name=name, change=change, parent=parent, **merged, **kw)


_BASE = Rung("unet", "plain U-Net (ngf 24, 3.2 M params), L1 on the whole image, Adam 1e-3")
_TWO = _r("2enc", "a second encoder E_C (reading I_I again), skips Concat(F_I, F_C) as eq. 1, no weighting",
          "unet", _BASE, unet={"encoders": 2}, guess="masked")
_IFR = _r("2enc_ifr", "E_C reads the IFR output (composited), as in the paper", "2enc", _TWO, guess="ifr")
# the layout rungs change 2enc (E_C reads I_I again): the layout's effect without the IFR's cost per step
_LGNET = _r("sfr_layout", "LGNet's Unet256 layout (the SFR generator: 4x4 stride-2 convs, nothing at full "
            "resolution), no norm, no weighting, E_C reading I_I as in 2enc", "2enc", _TWO, generator="sfr",
            sfr={"layout": "unet256", "ngf": 32, "norm": "none", "weighting": "none", "full_res": False})
#: paper-side loss of the small preset: eq. 10 as printed
_EQ10 = {f.name: f.default for f in dataclasses.fields(LossConfig) if f.name.startswith("lambda")}

RUNGS: dict[str, Rung] = {r.name: r for r in (
    _BASE,
    _r("unet_seed1", "seed 1 (seed noise)", "unet", _BASE, seed=1),
    _r("unet_50min", "the calibration: the same U-Net for 50 CPU-minutes (6,700 steps), not a rung",
       "unet", _BASE, steps=6_700),
    _r("unet_seed2", "seed 2 (seed noise)", "unet", _BASE, seed=2),
    _r("unet_wide", "control for 2enc: one encoder, ngf 31 (5.3 M params, as many as 2enc)", "unet", _BASE,
       unet={"ngf": 31}),
    _r("lr_1e-4", "Adam lr 1e-4 (section 4.1's value, given for batch 1)", "unet", _BASE, lr=1e-4),
    _r("batchnorm", "BatchNorm after every conv (LGNet's norm)", "unet", _BASE, unet={"norm": "batch"}),
    _r("+perceptual", "eq. 7 at weight 120 (eq. 10 as printed; rec at 50), random VGG features, in fp32",
       "unet", _BASE, loss={"lambda3_rec": 50.0, "lambda4_perceptual": 120.0}),
    _r("+perceptual_bf16", "the same, VGG features under bf16 autocast (the old small preset)", "+perceptual",
       _BASE, loss={"lambda3_rec": 50.0, "lambda4_perceptual": 120.0, "vgg_precision": "autocast"}),
    _r("+style", "eq. 8 at weight 0.05 (as printed; rec at 50), random VGG, fp32", "unet", _BASE,
       loss={"lambda3_rec": 50.0, "lambda5_style": 0.05}),
    _r("+style_lgnet", "eq. 8 at weight 120 (LGNet's / PConv's; rec at 50), random VGG, fp32", "unet", _BASE,
       loss={"lambda3_rec": 50.0, "lambda5_style": 120.0}),
    _r("+tv", "eq. 9 at weight 0.1 (rec at 50)", "unet", _BASE, loss={"lambda3_rec": 50.0, "lambda6_tv": 0.1}),
    _r("+adv", "eq. 10's adversarial term with D2 at weight 1 (rec at 50)", "unet", _BASE,
       loss={"lambda3_rec": 50.0, "lambda7_adv": 1.0}),
    _TWO,
    _IFR,
    _r("w_paper", "eq. 1 literal, w = 1/N_M on E_I's features", "2enc_ifr", _IFR, unet={"weighting": "paper"}),
    _r("w_inverse_ratio", "eq. 1 read as w = r_min / max(N_M/N, r_min)", "2enc_ifr", _IFR,
       unet={"weighting": "inverse_ratio"}),
    _r("w_valid_fraction", "eq. 1 read as w = 1 - N_M/N", "2enc_ifr", _IFR, unet={"weighting": "valid_fraction"}),
    _r("batchnorm_ifr", "BatchNorm after every conv (as batchnorm), on w_valid_fraction", "w_valid_fraction", _IFR,
       unet={"weighting": "valid_fraction", "norm": "batch"}),
    _r("guess_dropout", "half the training samples' E_C reads I_I instead of the IFR output (SFRStage.guess_dropout; "
       "ours): the SFR cannot learn to copy the guess", "w_valid_fraction", _IFR, unet={"weighting": "valid_fraction"},
       guess_dropout=0.5),
    _r("ifr_hole", "E_C reads an IFR trained with eq. 2 normalised over the hole (masked_l1_norm='hole'; "
       "pipeline variant ifr_hole)", "w_valid_fraction", _IFR, unet={"weighting": "valid_fraction"},
       upstream="ifr_hole"),
    _LGNET,
    _r("sfr_layout_fullres", "plus full-resolution 3x3 stems and head (SFRConfig.full_res)", "sfr_layout",
       _LGNET, sfr={"full_res": True}),
    _r("isfrnet_sfr", "the small preset's SFR before this ladder: BatchNorm, eq. 1 literal, eq. 10 as printed "
       "(random VGG, bf16), D2, lr 1e-4, E_C reading the IFR output", "sfr_layout", _LGNET,
       sfr={"norm": "batch", "weighting": "paper"}, loss={**_EQ10, "vgg_precision": "autocast"}, lr=1e-4, guess="ifr"),
)}


# ------------------------------------------------------------------------------ training


def ladder_preset(data_root: str | None = None, preset: str = "small") -> Preset:
    """The preset the ladder reads (its data, masks, precision, widths and upstream stages): ``small``;
    ``smoke`` only checks that the code runs (notebook 08 under nbval, a few steps per rung)."""
    return with_data_root(get_preset(preset), data_root)


def rung(name: str, steps: int | None = None) -> Rung:
    """Rung ``name`` of :data:`RUNGS`, at ``steps`` instead of its own step count when given (smoke)."""
    return RUNGS[name] if steps is None else dataclasses.replace(RUNGS[name], steps=steps)


def ladder_dir(P: Preset) -> Path:
    """``runs/<preset>/<data tag>/ladder``: every rung's run folder and the cached biharmonic scores."""
    from isfr.core.paths import runs_dir

    return runs_dir(P.name) / data_tag(P) / "ladder"


def rung_dir(P: Preset, rung: Rung) -> Path:
    return ladder_dir(P) / f"{rung.name}@{rung.key()}"


def build_generator(P: Preset, rung: Rung) -> torch.nn.Module:
    with seeded(rung.seed):
        if rung.generator == "unet":
            return UNet(dataclasses.replace(P.unet, **rung.unet))  # the learned baseline's U-Net
        return SFRGenerator(dataclasses.replace(P.sfr, **rung.sfr))  # the rung pins what its key must cover


def train_rung(P: Preset, rung: Rung, **loop_kw: Any):
    """Train (or load, when finished) one rung: ``(FitResult, generator with its val-best weights, upstream
    stages 1-2 or None)``."""
    if rung.guess == "ifr" and rung.upstream != "full":  # its own IFR (resumable; loaded when finished)
        ifr = train_ifr(P, rung.upstream, **loop_kw)
        if not ifr.finished:
            return ifr, None, None
    gen = build_generator(P, rung)
    res, upstream = train_refiner(P, rung_dir(P, rung), gen, LossConfig(**rung.loss), lr=rung.lr, steps=rung.steps,
                                  guess=rung.guess, upstream=rung.upstream,
                                  guess_dropout=rung.guess_dropout, key="gen", seed=rung.seed, lr_decay=rung.lr_decay,
                                  config={"rung": dataclasses.asdict(rung), "rung_key": rung.key()}, **loop_kw)
    return res, gen.eval(), upstream


def rung_method(gen: torch.nn.Module, rung: Rung, upstream=None):
    """The rung's generator as an :mod:`isfr.evaluation.baselines` method ``(image, mask) -> out``."""

    @torch.no_grad()
    def method(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        masked = image * (1 - mask)
        with autocast("cpu", "auto"):  # bf16 where the CPU runs it in hardware (as the rungs trained), else fp32
            if rung.guess == "none":
                out = gen(masked, mask)
            elif rung.guess == "masked":
                out = gen(masked, masked, mask)
            else:
                i_c = upstream.run_stage1(masked, mask).float()
                e_c = upstream.e_c_input(masked, mask, i_c)[0].float()
                out = gen(masked, e_c, mask)
        return out.float().clamp(-1, 1)

    return method


def _provenance(P: Preset, vgg: bool, steps: str) -> str:
    """``isfr.experiments.runs.provenance`` of ``P``'s data, flagging random VGG features only where ``vgg``."""
    from isfr.data import resolve_data_root

    return provenance(dataclasses.replace(P, allow_random_vgg=P.allow_random_vgg and vgg),
                      resolve_data_root(P.data.root), steps)


def rung_source(P: Preset, rung: Rung, best_step: int | str) -> str:
    """The provenance line of a rung's per-image scores: preset, resolution, data tag, its steps and the val-best
    checkpoint scored, hardware and commit."""
    return _provenance(P, LossConfig(**rung.loss).uses_vgg, f"rung {rung.name}, {rung.steps} steps (batch "
                       f"{P.schedule.batch_size}), val-best checkpoint step {best_step}")


def _best_step(P: Preset, rung: Rung) -> int | str:
    """The val-best step of a finished rung (its ``done.json``), or ``"?"``."""
    done = rung_dir(P, rung) / "done.json"
    return ((json.loads(done.read_text()).get("best") or {}).get("step") or "?") if done.is_file() else "?"


def score_rung(P: Preset, rung: Rung, gen, upstream) -> pd.DataFrame:
    """Per-image scores on the whole val split (cached beside the run as ``val_scores.csv.gz``), whose
    ``source`` names the preset, the data and the checkpoint scored (:func:`rung_source`)."""
    from isfr.evaluation import evaluate, read_csv, write_csv

    path = rung_dir(P, rung) / "val_scores.csv.gz"
    if path.is_file():
        df = read_csv(path)
    else:
        df = evaluate(rung_method(gen, rung, upstream), val_dataset(P, images="all"), name=rung.name,
                      batch_size=64, progress=False, source=rung_source(P, rung, _best_step(P, rung)))
        write_csv(df, path)
    if rung.guess == "ifr":
        guess_reliance(P, rung, gen, upstream)
    return df


@torch.no_grad()
def guess_reliance(P: Preset, rung: Rung, gen, upstream, images: int = 60) -> dict[str, float]:
    """For a rung reading the IFR output: PSNR over hole pixels of its output and of its guess against the
    truth, and of its output against its guess, on the first ``images`` val images x 6 buckets (cached as
    ``guess_reliance.json``). Output-vs-guess far above output-vs-truth means the SFR copies its guess."""
    path = rung_dir(P, rung) / "guess_reliance.json"
    if path.is_file():
        return json.loads(path.read_text())
    batch = next(iter(torch.utils.data.DataLoader(val_dataset(P, images=images), batch_size=6 * images)))
    image, mask = batch["image"], batch["mask"]
    masked = image * (1 - mask)
    with autocast("cpu", "auto"):  # as rung_method computes it
        guess = upstream.e_c_input(masked, mask, upstream.run_stage1(masked, mask).float())[0].float().clamp(-1, 1)
    out = rung_method(gen, rung, upstream)(image, mask)

    def hole_psnr(a: torch.Tensor, b: torch.Tensor) -> float:  # images in [-1, 1]: peak-to-peak 2
        mse = (((a - b) ** 2) * mask).sum() / (3 * mask.sum())
        return round(float(10 * torch.log10(4 / mse)), 3)

    res = {"pairs": int(len(image)), "output_vs_truth": hole_psnr(out, image),
           "guess_vs_truth": hole_psnr(guess, image), "output_vs_guess": hole_psnr(out, guess)}
    path.write_text(json.dumps(res, indent=1))
    return res


def biharmonic_scores(P: Preset) -> pd.DataFrame:
    """``inpaint_biharmonic`` on the whole val split (cached in the ladder folder)."""
    from isfr.evaluation.baselines import biharmonic
    from isfr.evaluation import evaluate, read_csv, write_csv

    path = ladder_dir(P) / "biharmonic_val_scores.csv.gz"
    if path.is_file():
        return read_csv(path)
    df = evaluate(biharmonic, val_dataset(P, images="all"), name="biharmonic", batch_size=64, progress=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_csv(df, path)
    return df


# ------------------------------------------------------------------------------ the table


def _hours(run: Path) -> float:
    from isfr.training.record import train_seconds

    if not (run / "train_log.csv").is_file():  # fewer steps than log_every (smoke)
        return float("nan")
    return train_seconds(pd.read_csv(run / "train_log.csv")["elapsed_s"]) / 3600


def ladder_table(P: Preset, names: list[str] | None = None, n_boot: int = 1000, steps: int | None = None) -> pd.DataFrame:
    """One row per finished rung: scores, paired differences vs its parent and vs biharmonic, CPU-hours."""
    from isfr.evaluation import head_to_head, read_csv

    bih = biharmonic_scores(P)
    scores: dict[str, pd.DataFrame] = {}
    rows = []
    for name in names or list(RUNGS):
        r_ = rung(name, steps)
        d = rung_dir(P, r_)
        if not (d / "val_scores.csv.gz").is_file():
            continue
        scores[name] = read_csv(d / "val_scores.csv.gz")
        up = upstream_hours(P, r_.upstream) if r_.guess == "ifr" else 0.0
        done = json.loads((d / "done.json").read_text()) if (d / "done.json").is_file() else {}
        row: dict[str, Any] = {"rung": name, "parent": r_.parent or "", "change": r_.change,
                               "seed": r_.seed, "steps": done.get("step", r_.steps),
                               "best_step": (done.get("best") or {}).get("step"),
                               "train_cpu_h": round(_hours(d), 3), "upstream_cpu_h": round(up, 3)}
        if (d / "guess_reliance.json").is_file():
            row.update({f"hole {k}": v for k, v in json.loads((d / "guess_reliance.json").read_text()).items()})
        row["cpu_h"] = round(row["train_cpu_h"] + up, 3)
        vs_b = head_to_head(pd.concat([scores[name], bih]), name, "biharmonic", groups=("20-40", "40-60"),
                            n_boot=n_boot)
        for _, g in vs_b.iterrows():
            r = g["group"]
            for m in ("psnr", "ssim"):
                row[f"{m} {r}"] = g[f"{m} {name}"]
            row[f"psnr {r} vs biharmonic"] = g["psnr diff"]
            row[f"psnr {r} vs biharmonic lo"], row[f"psnr {r} vs biharmonic hi"] = g["psnr diff_lo"], g["psnr diff_hi"]
        if r_.parent in scores:
            vs_p = head_to_head(pd.concat([scores[name], scores[r_.parent]]), name, r_.parent,
                                groups=("20-40", "40-60"), n_boot=n_boot)
            for _, g in vs_p.iterrows():
                r = g["group"]
                row[f"psnr {r} vs parent"] = g["psnr diff"]
                row[f"psnr {r} vs parent lo"], row[f"psnr {r} vs parent hi"] = g["psnr diff_lo"], g["psnr diff_hi"]
                row[f"ssim {r} vs parent"] = g["ssim diff"]
        rows.append(row)
    df = pd.DataFrame(rows)
    if not df.empty:
        hours = df.set_index("rung")["cpu_h"]
        df["cpu_h vs parent"] = [h - hours.get(p, np.nan) for h, p in zip(df["cpu_h"], df["parent"])]
    return df


def seed_noise(table: pd.DataFrame) -> dict[str, float]:
    """Standard deviation of the base rung's PSNR over its seeds, per range (NaN with fewer than 2)."""
    seeds = table[table["rung"].str.fullmatch(r"unet(_seed\d+)?")]
    return {r: float(seeds[f"psnr {r}"].std(ddof=1)) if len(seeds) > 1 else float("nan") for r in ("20-40", "40-60")}


def _ci(v: float, lo: float, hi: float) -> str:
    return "" if pd.isna(v) else f"{v:+.2f} [{lo:+.2f}, {hi:+.2f}]"


def ladder_markdown(table: pd.DataFrame, note: str, steps: int = STEPS, batch: int = 16, pairs: int = 4680) -> str:
    """The ladder as Markdown: one line per rung, the paired CIs, seed noise, and the provenance."""
    head = ("| rung | parent | change | CPU-h (train + upstream) | PSNR 20-40 | vs parent | vs biharmonic "
            "| PSNR 40-60 | vs parent | vs biharmonic | SSIM 20-40 | SSIM 40-60 |\n" + "|---" * 12 + "|\n")
    lines = []
    for r in table.to_dict("records"):
        cell = {g: (_ci(r.get(f"psnr {g} vs parent", np.nan), r.get(f"psnr {g} vs parent lo", np.nan),
                        r.get(f"psnr {g} vs parent hi", np.nan)),
                    _ci(r[f"psnr {g} vs biharmonic"], r[f"psnr {g} vs biharmonic lo"], r[f"psnr {g} vs biharmonic hi"]))
                for g in ("20-40", "40-60")}
        lines.append(f"| {r['rung']} | {r['parent']} | {r['change']} | {r['train_cpu_h']:.2f} + {r['upstream_cpu_h']:.2f} "
                     f"| {r['psnr 20-40']:.2f} | {cell['20-40'][0]} | {cell['20-40'][1]} "
                     f"| {r['psnr 40-60']:.2f} | {cell['40-60'][0]} | {cell['40-60'][1]} "
                     f"| {r['ssim 20-40']:.3f} | {r['ssim 40-60']:.3f} |")
    noise = seed_noise(table)
    rel = table.dropna(subset=["hole output_vs_guess"]) if "hole output_vs_guess" in table else table.iloc[:0]
    reliance = ("How closely each rung reading the IFR output follows its guess (PSNR in dB over the hole pixels of "
                "the first val pairs, `guess_reliance.json`): output vs truth, guess vs truth, output vs guess; output vs "
                "guess far above output vs truth means the SFR copies its guess.\n\n"
                "| rung | pairs | output vs truth | guess vs truth | output vs guess |\n|---|---|---|---|---|\n"
                + "".join(f"| {r['rung']} | {int(r['hole pairs'])} | {r['hole output_vs_truth']:.2f} | "
                          f"{r['hole guess_vs_truth']:.2f} | {r['hole output_vs_guess']:.2f} |\n"
                          for r in rel.to_dict("records")) + "\n") if len(rel) else ""
    n_seeds = int(table["rung"].str.fullmatch(r"unet(_seed\d+)?").sum())
    pending = [n for n in RUNGS if n not in set(table["rung"])]
    return ("# The equal-compute ladder (ours, not the paper's)\n\n"
            f"Every rung: {steps:,} steps at batch {batch}, lr x{LR_DECAY[1]} for the last sixth, val-best "
            f"checkpoint, scored on the whole val split ({pairs:,} image-mask pairs, one mask per bucket), composited, uint8. "
            "Differences are paired (same image and mask), mean [95 % percentile-bootstrap CI, 1,000 resamples]. "
            "CPU-hours: training wall time of one process at one torch thread (the other core ran another job; "
            "rungs trained beside more than one other job, e.g. the paper dry run, took up to ~2x longer: "
            "figures/small/RUN.md says which); "
            "a rung reading the IFR output adds stages 1-2's hours. Perceptual and style terms use random VGG features: they are not "
            "the paper's losses.\n\n" + head + "\n".join(lines) + "\n\n"
            f"Seed noise (sd of the base rung's PSNR over {n_seeds} "
            f"seeds): 20-40 % {noise['20-40']:.2f} dB, 40-60 % {noise['40-60']:.2f} dB.\n\n"
            + reliance + (f"Not run yet: {', '.join(pending)}.\n\n" if pending else "") + f"Source: {note}\n")


def ladder_figure(table: pd.DataFrame, note: str, title: str = "Equal-compute ladder, small preset (64 px)"):
    """Left: each rung's PSNR gain over biharmonic against its CPU-hours; right: its gain over its parent."""
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 0.35 * len(table) + 3))
    for g, c in (("20-40", "tab:blue"), ("40-60", "tab:orange")):
        a.scatter(table["cpu_h"], table[f"psnr {g} vs biharmonic"], color=c, label=f"{g} % holes")
        for r in table.to_dict("records"):
            a.annotate(r["rung"], (r["cpu_h"], r[f"psnr {g} vs biharmonic"]), fontsize=7)
    a.axhline(0, color="k", lw=0.8)
    a.set(xlabel="CPU-hours (train + upstream)", ylabel="PSNR - biharmonic (dB)", title="What each rung reaches")
    a.legend()
    y = np.arange(len(table))
    for k, (g, c) in enumerate((("20-40", "tab:blue"), ("40-60", "tab:orange"))):
        col = f"psnr {g} vs parent"
        if col not in table:
            continue
        v = table[col].to_numpy(float)
        err = np.abs(np.stack([v - table[f"{col} lo"].to_numpy(float), table[f"{col} hi"].to_numpy(float) - v]))
        b.barh(y + (k - 0.5) * 0.38, v, height=0.38, xerr=err, color=c, label=f"{g} %")
    b.set_yticks(y, [f"{r} (from {p})" if p else r for r, p in zip(table["rung"], table["parent"])], fontsize=8)
    b.axvline(0, color="k", lw=0.8)
    b.invert_yaxis()
    b.set(xlabel="PSNR vs parent rung (dB, 95 % CI)", title="What each ingredient buys")
    b.legend()
    fig.suptitle(title, fontsize=11)
    fig.text(0.01, 0.005, note, fontsize=6)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def write_ladder(P: Preset, out: Path | None = None, steps: int | None = None) -> pd.DataFrame:
    """``figures/<preset>/ladder.{csv,md,png}`` and each finished rung's logs and per-image scores."""
    from isfr.experiments.figures import save_figure
    from isfr.core.paths import figures_dir
    from isfr.core.utils import atomic_write_text

    out = out or figures_dir(P.name)
    table = ladder_table(P, steps=steps)
    if table.empty:
        return table
    for name in table["rung"]:
        src, dst = rung_dir(P, rung(name, steps)), out / "ladder_runs" / name
        dst.mkdir(parents=True, exist_ok=True)
        for f in ("config.json", "done.json", "train_log.csv", "val_log.csv", "val_scores.csv.gz", "guess_reliance.json"):
            if (src / f).is_file():
                shutil.copyfile(src / f, dst / f)
    n, batch = steps or STEPS, P.schedule.batch_size
    vgg = any(LossConfig(**RUNGS[name].loss).uses_vgg for name in table["rung"])  # "random VGG" only where used
    note = _provenance(P, vgg, f"{n} steps per rung (batch {batch})")
    table.to_csv(out / "ladder.csv", index=False, float_format="%.4f")
    atomic_write_text(ladder_markdown(table, note, n, batch, len(biharmonic_scores(P))), out / "ladder.md")
    save_figure(ladder_figure(table, note, f"Equal-compute ladder, {P.name} preset ({P.data.resolution} px)"),
                out / "ladder.png")
    return table


#: rungs that cross every code path (one and two encoders, VGG, D2, the IFR's output, the SFR layout): smoke
SMOKE_RUNGS = ("unet", "unet_seed1", "+perceptual", "+adv", "2enc_ifr", "sfr_layout")


def run_ladder(P: Preset, names: list[str] | None = None, steps: int | None = None,
               progress: bool = True, **loop_kw: Any) -> pd.DataFrame:
    """Train and score ``names`` (default: every rung, in :data:`RUNGS` order) on :func:`ladder_preset` ``P``,
    then write the table; ``steps`` replaces every rung's step count (smoke only); ``loop_kw`` reach every
    rung's training loop (e.g. ``time_budget_s``: a rung stopped by it resumes on the next call)."""
    biharmonic_scores(P)
    for name in names or list(RUNGS):
        r = rung(name, steps)
        res, gen, upstream = train_rung(P, r, progress=progress, **loop_kw)
        if res.finished and gen is not None:
            score_rung(P, r, gen, upstream)
            print(f"{name}: {res.step} steps ({res.stop_reason}), scored", flush=True)
    return write_ladder(P, steps=steps)
