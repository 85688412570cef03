"""Which run is which: the variants (rows of Table 1 and our extras), run folders, the data a preset
reads, the pretrained files it reads, and what a run recorded (steps, val-best checkpoint, provenance lines).

Run folders (git-ignored): ``runs/<preset>/<data tag>/<run>/`` with ``checkpoints/best.pt``, logs,
``config.json`` and ``done.json`` (:func:`run_dir`). Variants share every run they can (e.g. the
"no weighting" variant reuses the full model's IFR run). Training (:mod:`isfr.experiments.pipeline`),
the trained models (:mod:`isfr.experiments.trained`) and the experiments (:mod:`isfr.experiments.experiment`) all find runs here.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader

from isfr.models.backbones import VGG16_FILE, hub_checkpoint_path
from isfr.experiments.config import Preset, get_preset
from isfr.data import build_from_config, data_identity
from isfr.evaluation import provenance as measured_here
from isfr.core.paths import REPO_ROOT, figures_dir, runs_dir
from isfr.models.pretrained import STANDIN_NOTE, is_standin, sha256_file
from isfr.training.checkpoint import read_checkpoint
from isfr.training.rundir import read_done


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
    # Table 1 leaves this row's Weighting box empty: an ambiguity, see isfr.evaluation.paper_numbers
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


def as_variant(variant: Variant | str) -> Variant:
    """``VARIANTS[variant]`` for a name, the variant itself otherwise."""
    return VARIANTS[variant] if isinstance(variant, str) else variant


def stage_runs(preset: Preset, variant: Variant | str = "full", budget: Budget = "main") -> dict[str, tuple[str, int]]:
    """Run folder and step count of the IFR and SFR runs of ``variant`` at ``budget``.

    The ablation budget (``schedule.ablation_ifr_steps`` / ``ablation_sfr_steps``) trains every row
    of Table 1 alike; when it equals the main schedule the runs are shared, otherwise they get an
    ``_abl`` suffix (the full model is then trained twice: once per budget)."""
    v, s = as_variant(variant), preset.schedule
    if budget not in ("main", "ablation"):
        raise ValueError(f"budget must be 'main' or 'ablation', got {budget!r}")
    out = {}
    for kind, run, main_steps, abl_steps in (("ifr", v.ifr_run, s.ifr_steps, s.ablation_ifr_steps),
                                             ("sfr", v.sfr_run, s.sfr_steps, s.ablation_sfr_steps)):
        abl = budget == "ablation" and abl_steps is not None and abl_steps != main_steps
        out[kind] = (run + "_abl", abl_steps) if abl else (run, main_steps)
    return out


#: Table 1's rows (section 4.2) as the paper names them (:data:`isfr.evaluation.paper_numbers.TABLE1`) -> our variant.
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
    """``preset`` with the variant's overrides (its IFR and SFR runs train with these settings)."""
    v = as_variant(variant)
    return get_preset(preset.name, **{**preset_overrides(preset), **v.overrides})


def preset_overrides(preset: Preset) -> dict[str, Any]:
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


def uses_pretrained_stage1(preset: Preset) -> bool:
    """Stage 1 is a pretrained pSp file (``psp.checkpoint``), not the StyleGAN2 and pSp runs trained here."""
    return bool(preset.psp.checkpoint)


def stage1_runs(preset: Preset) -> list[str]:
    """The stage-1 runs trained here: StyleGAN2 and pSp, only pSp when a pretrained one is fine-tuned
    (``psp.finetune``), none for a frozen pretrained pSp."""
    if not uses_pretrained_stage1(preset):
        return ["stylegan", "psp"]
    return ["psp"] if preset.psp.finetune else []


def data_config(preset: Preset, data_root: str | None = None):
    """The preset's :class:`isfr.data.DataConfig`, reading ``data_root`` when given, seeded by the preset."""
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
        if json.loads((folder / "data_identity.json").read_text()).get("tag") == tag:
            return committed
    return folder / f"manifest_{split}_{tag}.csv"


def val_batches(preset: Preset, data_root: str | None = None, split: str = "val", images: int | None = None) -> list[dict]:
    """:func:`val_dataset`, batched: the same pairs for every stage and variant."""
    ds = val_dataset(preset, data_root, split, images)
    return list(DataLoader(ds, batch_size=max(1, preset.schedule.batch_size), shuffle=False))


def run_weights(preset: Preset) -> dict[str, Path]:
    """The pretrained files a training run of ``preset`` reads: pSp's checkpoint (frozen stage 1), the
    ImageNet VGG-16 when it is in the hub cache (else random features, no file), ArcFace for the ID loss
    when stage 1 is trained here."""
    out: dict[str, Path] = {}
    if preset.psp.checkpoint:
        p = Path(preset.psp.checkpoint)
        out["psp"] = p if p.is_absolute() else REPO_ROOT / p
    vgg = hub_checkpoint_path(VGG16_FILE)
    if vgg.is_file():
        out["vgg16"] = vgg
    arc = preset.psp_loss.arcface_path
    if arc and preset.schedule.psp_steps > 0:
        out["arcface"] = Path(arc)
    return out


def weights_identity(preset: Preset) -> dict[str, str]:
    """``{"psp": "<sha256[:12]>", ...}`` for :func:`run_weights` that exist (a missing file is the loader's
    error to report); empty when the run reads none (the CPU presets without a VGG file)."""
    return {k: sha256_file(p)[:12] for k, p in run_weights(preset).items() if p.is_file()}


def standin_flags(preset: Preset) -> list[str]:
    """``[STANDIN_NOTE]`` when any file the preset reads is a stand-in (provenance lines), else ``[]``."""
    return [STANDIN_NOTE] if any(is_standin(p) for p in run_weights(preset).values() if p.is_file()) else []


def run_key(preset: Preset) -> str:
    """``""`` for a named preset as defined, else ``"@<hash>"`` of what was overridden (schedule fields
    aside, so a run can be extended) and of the sha256 of every pretrained file the run reads
    (:func:`weights_identity`): runs of a customised preset, or of other weight files
    (stand-ins), never reuse the default's checkpoints."""
    changed = {k: v for k, v in preset_overrides(preset).items()
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


def best_checkpoint(preset: Preset, run: str) -> dict:
    """The checkpoint run ``run`` keeps (``best.pt``, its best on val, else ``last.pt``), refused when it was
    trained on other data or other pretrained files; a missing run is an error naming its folder."""
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


def record_dir(preset: Preset, run: str) -> Path:
    """The folder holding a run's records (``config.json``, ``done.json``, the logs): its run folder, or, where that
    is gone (run folders do not move between machines), the copy of its records committed under
    ``figures/<preset>/training_logs/<run>/`` (``tools/copy_run_logs.py``)."""
    folder = run_dir(preset, run)
    committed = REPO_ROOT / "figures" / preset.name / "training_logs" / folder.name
    return committed if not (folder / "done.json").is_file() and (committed / "done.json").is_file() else folder


def kept_step(preset: Preset, run: str, committed: bool = False) -> int | None:
    """Step of the checkpoint a finished run keeps (its best on val), from its ``done.json``; None if unknown.
    ``committed``: where the run folder is gone, from the run's committed records (:func:`record_dir`), for a run
    whose committed scores are reused (the learned U-Net's in notebook 06)."""
    done = read_done(record_dir(preset, run) if committed else run_dir(preset, run)) or {}
    best = done.get("best") if done.get("best_checkpoint") else None
    return int(best["step"]) if isinstance(best, dict) and "step" in best else None


def schedule_status(preset: Preset, variant: Variant | str = "full", budget: Budget = "main") -> dict[str, dict]:
    """Per run of ``variant`` (stage 1 included where it is trained here): steps of the checkpoint it keeps,
    the steps its schedule asks for, and whether the run finished (``done.json``)."""
    v, s = as_variant(variant), preset.schedule
    runs = [(r, {"stylegan": s.stylegan_steps, "psp": s.psp_steps}[r]) for r in stage1_runs(preset)]
    runs += [stage_runs(preset, v, budget)[k] for k, on in (("ifr", v.use_ifr), ("sfr", v.use_sfr)) if on]
    out = {}
    for run, total in runs:
        done = read_done(run_dir(preset, run)) or {}
        step = done.get("step")
        if step is None:
            try:
                step = int(best_checkpoint(preset, run)["step"])
            except FileNotFoundError:
                step = 0
        out[run] = {"step": int(step), "total_steps": int(total), "finished": bool(done) and int(step) >= int(total)}
    return out


def steps_text(preset: Preset, variant: Variant | str = "full", budget: Budget = "main", upto: str = "sfr") -> str:
    """What a variant was trained with, up to stage ``upto`` ("stage1" | "ifr" | "sfr"), for
    provenance lines, e.g. ``"StyleGAN2 3000 + pSp 1500 steps + IFR 3000 + SFR 8000 steps (batch 16)"``."""
    v, runs, s = as_variant(variant), stage_runs(preset, variant, budget), preset.schedule
    stage1 = "pretrained pSp" if uses_pretrained_stage1(preset) else f"StyleGAN2 {s.stylegan_steps} + pSp {s.psp_steps} steps"
    used = [k for k, on in (("ifr", v.use_ifr and upto in ("ifr", "sfr")), ("sfr", v.use_sfr and upto == "sfr")) if on]
    parts = [f"{k.upper()} {runs[k][1]}" for k in used]
    kept = [f"{k.upper()} {b}" for k in used if (b := kept_step(preset, runs[k][0])) not in (None, runs[k][1])]
    return (stage1 + (f" + {' + '.join(parts)} steps" if parts else "") + f" (batch {s.batch_size})"
            + (f", val-best checkpoints {', '.join(kept)}" if kept else ""))


#: Table 2's name for the learned baseline (ours)
UNET_ROW = "U-Net, L1, equal CPU-hours (ours)"


def unet_steps_text(preset: Preset) -> str:
    """``"U-Net 20 steps (batch 4), val-best checkpoint 15"``: the learned baseline's provenance."""
    kept = kept_step(preset, "unet", committed=True)
    s = preset.schedule
    return f"U-Net {s.unet_steps} steps (batch {s.batch_size})" + (
        f", val-best checkpoint {kept}" if kept not in (None, s.unet_steps) else "")


def provenance(preset: Preset, root: Any = None, steps: int | str | None = None) -> str:
    """One line for every figure and table (:func:`isfr.evaluation.provenance`), plus what makes the
    numbers weaker than the paper's: synthetic faces, random VGG features."""
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
