"""The ``paper`` preset end to end on the CPU with stand-in weights, before anyone spends a GPU-day on it (ours).

``isfr dryrun`` (``make dryrun-paper``) writes stand-in weight files (:mod:`isfr.models.pretrained`) into a
temporary folder, points ``TORCH_HOME``, ``ISFR_RUNS_DIR`` and ``ISFR_FIGURES_DIR`` there, sets
``ISFR_ALLOW_STANDIN_WEIGHTS=1`` for its own processes only, and runs the entry points a user runs:
``isfr train --preset paper``, notebooks 01-06 by papermill (``isfr reproduce``), ``isfr inpaint`` with the
exported model and ``isfr evaluate`` on the test pairs (LPIPS with the stand-in AlexNet, the dlib identity
metric). Only the workload is shrunk (:data:`WORKLOAD`: 3 steps per stage, 1 val image, 2 test images, a
2-image whole-val head-to-head); everything else is the paper preset (256 px, batch 1, real widths,
frozen pSp, real-format VGG and AlexNet), except fp16 + GradScaler, which needs CUDA: ``amp="auto"`` here, i.e.
bf16 autocast on a CPU that runs bf16 in hardware and fp32 on one that would emulate it (tens of times slower;
:func:`isfr.core.utils.resolve_amp`). The report names the precision that ran.

It reports wall time, peak RSS and disk used per phase, seconds per training step of each stage at 256 px,
checkpoint sizes, and the projected evaluation time of the paper protocol (seconds per scored pair x
12,000 pairs), as ``benchmarks/results/dryrun_<preset>[_<preprocess>].md``. ``cut_down=True`` (CI) trains
the full model only, runs notebooks 01, 04 and 06, and writes the stand-ins compact
(:func:`isfr.models.standins.compact_tensor`: the same keys, shapes and dtypes in under 3 MB instead of 2 GB). It
refuses to start, in one line, on a disk with less room than :data:`DISK_GIB` says it needs. Every number it
computes is meaningless as a result.
"""
from __future__ import annotations

import csv
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from isfr.core.paths import REPO_ROOT, shown_path

#: the workload of the dry run; everything else is the preset as it is (fp16 -> bf16 or fp32 on the CPU: "auto")
WORKLOAD: dict[str, Any] = {
    "schedule.ifr_steps": 3, "schedule.sfr_steps": 3, "schedule.unet_steps": 3, "schedule.val_images": 1,
    "schedule.test_images": 2, "schedule.h2h_val_images": 2, "schedule.log_every": 1, "schedule.ckpt_every": 3,
    "schedule.val_every": 3, "schedule.amp": "auto",
}
#: ``cut_down`` (CI): every stage crossed once at 256 px, one image per split
CUT_DOWN: dict[str, Any] = {**WORKLOAD, "schedule.ifr_steps": 1, "schedule.sfr_steps": 1, "schedule.unet_steps": 1,
                            "schedule.test_images": 1, "schedule.h2h_val_images": 1, "schedule.ckpt_every": 1,
                            "schedule.val_every": 1}
#: free disk the dry run needs under ``TMPDIR``, GiB: the measured peak (stand-ins, runs, figures and the temporary
#: copy of an atomic save; 10.5 GiB in all, 2.8 GiB cut down with compact stand-ins) and a margin
DISK_GIB = {"full": 12.0, "cut_down": 3.5}
PAPER_PAIRS = 12_000  # the paper protocol: 2,000 test images x 6 buckets (isfr.experiments.config, paper preset)
CUT_DOWN_NOTEBOOKS = ("01", "04", "06")


def _run(cmd: list[str], env: dict[str, str], log: Path) -> dict[str, float]:
    """Run ``cmd`` with its output in ``log``; wall seconds and peak RSS (MiB, the process and the children
    it waited for). A failure raises naming the command and the log's last lines."""
    t0 = time.perf_counter()
    with log.open("w") as f:
        p = subprocess.Popen(cmd, env=env, stdout=f, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise RuntimeError(f"dry run: `{' '.join(cmd)}` failed (exit {p.returncode}); log {log}:\n{tail}")
    return {"wall_s": wall, "peak_rss_mib": usage.ru_maxrss / 1024}


def check_free_disk(folder: Path, need_gib: float) -> None:
    """Refuse to start when ``folder`` has less than ``need_gib`` free: a disk that fills half-way through a
    checkpoint fails deep inside ``torch.save`` with a message that does not say why."""
    free = shutil.disk_usage(folder).free / 2**30
    if free < need_gib:
        raise OSError(f"dry run: {folder} has {free:.1f} GiB free and the dry run needs about {need_gib:.1f} GiB "
                      "there (stand-in weights, checkpoints, figures): free some space, or point TMPDIR at a "
                      "folder on a disk with more room")


def _du_mib(folder: Path) -> float:
    """Disk used under ``folder`` (hard links, e.g. ``last.pt`` / ``best.pt``, counted once)."""
    seen = {(st.st_dev, st.st_ino): st.st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink()
            for st in [p.stat()]}
    return sum(seen.values()) / 2**20


def step_times(runs: Path) -> list[dict[str, Any]]:
    """Seconds per training step of every run under ``runs``: the smallest step-to-step difference of
    ``elapsed_s`` in its ``train_log.csv`` (the first step's warm-up and the val pass left out; the
    benchmarks' rule on a shared machine), the first step's time for a one-step run."""
    out = []
    for log in sorted(runs.rglob("train_log.csv")):
        rows = list(csv.DictReader(log.open()))
        t = [float(r["elapsed_s"]) for r in rows]
        diffs = sorted(b - a for a, b in zip(t, t[1:]))
        ckpt = log.parent / "checkpoints"
        size = max((p.stat().st_size for p in ckpt.glob("*.pt")), default=0) / 2**20 if ckpt.is_dir() else 0
        out.append({"run": log.parent.name, "steps": len(rows),
                    "s_per_step": diffs[0] if diffs else (t[0] if t else float("nan")),
                    "checkpoint_mib": size})
    return out


def dryrun(preset: str = "paper", data_root: str | None = None, preprocess: str | None = None,
           cut_down: bool = False, out: str | Path | None = None, keep: bool = False) -> Path:
    """Run the dry run and write its table (default ``benchmarks/results/dryrun_<preset>[_<preprocess>].md``;
    ``out`` for another file). The temporary folder goes unless ``keep``."""
    from isfr.models.pretrained import STANDIN_ENV, STANDIN_NOTE
    from isfr.models.standins import write_standins

    data_root = data_root or os.environ.get("ISFR_DATA_ROOT") or None
    check_free_disk(Path(tempfile.gettempdir()), DISK_GIB["cut_down" if cut_down else "full"])
    tmp = Path(tempfile.mkdtemp(prefix="isfr-dryrun-"))
    env = {**os.environ, "TORCH_HOME": str(tmp / "torch"), "ISFR_RUNS_DIR": str(tmp / "runs"),
           "ISFR_FIGURES_DIR": str(tmp / "figures"), STANDIN_ENV: "1", "MPLBACKEND": "Agg"}
    env.pop("ISFR_DATA_ROOT", None)
    if data_root:
        env["ISFR_DATA_ROOT"] = str(Path(data_root).resolve())
    sets = {**(CUT_DOWN if cut_down else WORKLOAD), "psp.checkpoint": str(tmp / "weights" / "psp_ffhq_encode.pt")}
    if preprocess:
        sets["data.preprocess"] = preprocess
    args = [a for k, v in sets.items() for a in ("--set", f"{k}={v}")]
    cli = [sys.executable, "-m", "isfr.apps.cli"]
    phases: dict[str, dict[str, float]] = {}
    try:
        t0 = time.perf_counter()
        write_standins(tmp, compact=cut_down)  # cut down: the same formats in MBs, not 2 GB (a CI disk is small)
        phases["stand-in weights"] = {"wall_s": time.perf_counter() - t0, "peak_rss_mib": float("nan")}
        print(f"[isfr dryrun] stand-ins in {tmp} ({phases['stand-in weights']['wall_s']:.0f} s)", flush=True)
        variants = ["--variants", "full"] if cut_down else []
        steps = [("isfr train", cli + ["train", "--preset", preset, "--no-progress", *variants, *args]),
                 ("notebooks", cli + ["reproduce", "--preset", preset, *args]
                  + (["--only", *CUT_DOWN_NOTEBOOKS] if cut_down else []))]
        for name, cmd in steps:
            print(f"[isfr dryrun] {name} ...", flush=True)
            phases[name] = _run(cmd, env, tmp / f"{name.replace(' ', '_')}.log")
            print(f"[isfr dryrun] {name} done in {phases[name]['wall_s']:.0f} s", flush=True)
        from isfr.experiments.figures import missing_outputs

        figures = tmp / "figures" / preset
        missing = [] if cut_down else missing_outputs(figures, cpu_stage1=False)
        written = sorted(p.name for p in figures.glob("*") if p.is_file())
        export = next((tmp / "runs" / preset).glob("*/isfrnet_full*.pt"))
        image, mask = _inpaint_inputs(tmp, data_root)
        phases["isfr inpaint"] = _run(cli + ["inpaint", str(image), "--mask", str(mask), "--checkpoint", str(export),
                                             "-o", str(tmp / "inpainted.png"), "--no-progress"],
                                      env, tmp / "inpaint.log")
        per_pair = float("nan")
        if not cut_down:  # the evaluation projection: `isfr evaluate` on 2 test images x 6 buckets
            ev = _run(cli + ["evaluate", "--checkpoint", str(export), "--split", "test", "--limit", "2",
                             "--preset", preset, "--no-progress", "--batch-size", "1"]
                      + (["--data-root", env["ISFR_DATA_ROOT"]] if data_root else []), env, tmp / "evaluate.log")
            phases["isfr evaluate (12 pairs)"] = ev
            load = _run([sys.executable, "-c", "import sys; from isfr.apps.inpaint import load_model; "
                         "load_model(sys.argv[1])", str(export)], env, tmp / "load.log")
            phases["(model load alone)"] = load
            per_pair = max(ev["wall_s"] - load["wall_s"], 0.0) / 12
        table = _report(preset, preprocess, cut_down, data_root, phases, step_times(tmp / "runs"),
                        export.stat().st_size / 2**20, per_pair, _du_mib(tmp), STANDIN_NOTE, written, missing)
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    suffix = f"_{preprocess}" if preprocess else ""
    path = Path(out) if out else REPO_ROOT / "benchmarks" / "results" / f"dryrun_{preset}{suffix}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(table)
    print(table)
    return path


def _inpaint_inputs(tmp: Path, data_root: str | None) -> tuple[Path, Path]:
    """A photo (the first test image of the data root, else a synthetic face) and a centre-square hole mask."""
    import numpy as np
    from PIL import Image

    photo = next(iter(sorted(Path(data_root).rglob("*.jpg"))), None) if data_root else None  # a raw CelebA photo
    if photo is None:
        from isfr.data.synthetic import draw_face

        photo = tmp / "face.png"
        draw_face(0, 0, 256).save(photo)
    w, h = Image.open(photo).size
    hole = np.zeros((h, w), np.uint8)
    hole[h // 3: 2 * h // 3, w // 3: 2 * w // 3] = 255
    Image.fromarray(hole).save(tmp / "hole.png")
    return photo, tmp / "hole.png"


def _report(preset: str, preprocess: str | None, cut_down: bool, data_root: str | None,
            phases: dict[str, dict[str, float]], steps: list[dict[str, Any]], export_mib: float, per_pair: float,
            disk_mib: float, note: str, written: list[str], missing: list[str]) -> str:
    import torch

    from isfr.core.utils import git_commit, hardware, resolve_amp

    total = sum(p["wall_s"] for k, p in phases.items() if not k.startswith("("))
    lines = [f"# Dry run of the `{preset}` preset on the CPU ({note})", "",
             f"- date {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, commit {git_commit()}, torch "
             f"{torch.__version__}, {hardware()} in this process, {os.cpu_count()} cores, "
             f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, load average at the end "
             f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}",
             f"- `isfr dryrun --preset {preset}" + (f" --preprocess {preprocess}" if preprocess else "")
             + (" --cut-down" if cut_down else "") + "`: data "
             + (f"`{shown_path(data_root)}`" if data_root else "synthetic faces")
             + f"; workload {json.dumps(CUT_DOWN if cut_down else WORKLOAD)}; every other field as the preset has it",
             f"- **total wall time {total / 60:.1f} min**, disk used {disk_mib / 1024:.2f} GiB "
             f"({'compact ' if cut_down else ''}stand-ins, runs, figures), exported model {export_mib:.0f} MiB", "",
             f"- figures and tables written: {len(written)} files in `figures/{preset}/`"
             + ("" if cut_down else ("; every file of figures/README.md written" if not missing else
                                     f"; **missing** from figures/README.md's index: {', '.join(missing)}")), "",
             "| phase | wall s | peak RSS MiB |", "|---|---|---|"]
    lines += [f"| {k} | {v['wall_s']:.0f} | {v['peak_rss_mib']:.0f} |" for k, v in phases.items()]
    precision = {"bf16": "bf16 autocast", "none": "fp32"}[resolve_amp("auto", "cpu")]
    lines += ["", f"Seconds per training step at 256 px, batch 1 ({precision} on the CPU; the frozen stages' forward "
              "passes included; smallest step-to-step time):", "",
              "| run | steps | s / step | checkpoint MiB |", "|---|---|---|---|"]
    lines += [f"| {r['run']} | {r['steps']} | {r['s_per_step']:.2f} | {r['checkpoint_mib']:.0f} |" for r in steps]
    if per_pair != per_pair:  # NaN: the cut-down skips it
        return "\n".join(lines + [""])
    lines += ["", f"Evaluation of the paper protocol ({PAPER_PAIRS:,} pairs: PSNR, SSIM, LPIPS, dlib identity) "
              f"projected from `isfr evaluate` on 12 pairs (its model load subtracted): {per_pair:.2f} s / pair, "
              f"**{per_pair * PAPER_PAIRS / 3600:.1f} h** on this CPU.", ""]
    return "\n".join(lines)
