"""One-shot GPU check of the ISFRNet reimplementation: placement, AMP, DDP, speed, a mini-training, a projection.

Run once on the GPU machine, from a plain checkout, with the torch it has: ``python benchmarks/gpu_check.py
[--out PATH]`` (at most ~6 min on one H200-class GPU; installs, downloads and reads no weights, never imports
lpips or dlib). Every network has the paper preset's sizes and seeded random weights (IR-SE-50 pSp encoder +
1024 px config-f StyleGAN2 pooled to 256 px, IFR, SFR, patch discriminators, VGG-16 features). Sections:

1. placement: every parameter, buffer, gradient and output of every stage on the GPU;
2. fp16 autocast + ``torch.amp.GradScaler`` and bf16 autocast: IFR and SFR steps, all finite;
3. DDP over NCCL (``isfr.training.distributed``, torchrun): 1 process, 2 with 2 GPUs; parameters equal across ranks;
4. inference images/s of the whole pipeline at batch 1 / 8 / 32 in fp32 / bf16 / fp16;
5. s/step of the pSp encoder, IFR + D1 and SFR + D2 at 256 px, batch 1 / 8, with peak memory;
6. a 300-step IFR + SFR mini-training on synthetic faces (``small`` widths, 64 px): mean objective of the last 50
   steps >= 10 % below the first 50's; 7. projected hours of the paper preset's schedule and Table 1 runs.

Writes and prints ``benchmarks/results/gpu_<device>.md`` (or ``--out``); exits non-zero when a check fails,
at once when CUDA is missing. ``--dry``: every section at smoke size on the CPU in about a minute (gloo DDP,
2 processes; bf16 autocast + a disabled GradScaler stand in for fp16; section 6 reported, not enforced): CI.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
                    REPO, autocast, env_header, peak_rss_mib, reset_peak_rss, summarize, time_calls, write_out,
                    )

sys.path.insert(0, str(REPO))  # a plain checkout: isfr need not be installed

PRECISIONS = ("fp32", "bf16", "fp16")
NO_CUDA = ("gpu_check: CUDA is not available (torch.cuda.is_available() is False): run it on a GPU machine, "
           "or pass --dry for the CPU smoke run")


class Check:
    """Sizes and state of one run: the real GPU check, or the ``--dry`` CPU smoke run."""

    def __init__(self, dry: bool, budget_s: float = 0.0):
        self.dry, self.t0, self.budget_s = dry, time.monotonic(), budget_s
        self.failures: list[str] = []
        self.notes: list[str] = []
        self.dev = torch.device("cpu" if dry else "cuda")
        self.preset = "smoke" if dry else "paper"
        self.batches_inf, self.batches_train = ((1, 2), (1, 2)) if dry else ((1, 8, 32), (1, 8))
        self.amp_steps, self.ddp_steps = (2, 2) if dry else (3, 4)
        self.mini = ("smoke", 60, 10, 2) if dry else ("small", 300, 50, 16)  # widths, steps, window, batch
        self.warmup, self.repeats, self.min_repeats, self.time_s = (1, 1, 1, 0.0) if dry else (2, 6, 2, 2.0)

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def amp(self, prec: str) -> tuple[str, bool]:
        """(StepContext amp, GradScaler enabled) of ``prec``; on the CPU fp16 is bf16 + a disabled scaler."""
        if prec == "fp32":
            return "none", False
        return ("fp16", True) if prec == "fp16" and self.dev.type == "cuda" else ("bf16", False)

    def ok(self, good: bool, what: str) -> str:
        """``"yes"``, or ``"FAIL"`` with ``what`` recorded (the exit code becomes 1)."""
        if good:
            return "yes"
        self.failures.append(what)
        print(f"FAIL {what}", file=sys.stderr, flush=True)
        return "FAIL"


def preset(name: str, **over: Any) -> Any:
    from isfr.experiments.config import get_preset

    return get_preset(name, **({"psp.checkpoint": None} if name == "paper" else {}), **over)


class Parts:
    """A preset's full pipeline (stage 1 + IFR + SFR) as ``build_model`` makes it, D1, D2, random VGG-16."""

    def __init__(self, P: Any, dev: torch.device):
        from isfr.models.backbones import load_vgg16_features
        from isfr.experiments.trained import build_disc, build_model

        self.P, self.model = P, build_model(P).to(dev)
        self.d1, self.d2 = build_disc(P).to(dev), build_disc(P).to(dev)
        self.vgg = load_vgg16_features("random", allow_random=True, seed=P.seed, device=dev)

    def stage(self, kind: str) -> Any:
        """A fresh ``PSPStage`` / ``IFRStage`` / ``SFRStage``; its generator and D are made trainable again
        (a stage freezes what the next one reads), stale gradients dropped."""
        from isfr.training.stages import IFRStage, PSPStage, SFRStage

        m, s = self.model, self.P.schedule
        for p in [*m.parameters(), *self.d1.parameters(), *self.d2.parameters()]:
            p.grad = None
        for d in (self.d1, self.d2):
            d.requires_grad_(True).train()
        if kind == "psp":
            m.stage1.encoder.requires_grad_(True).train()
            return PSPStage(m, self.vgg, lr=s.lr, betas=s.betas, loss_cfg=self.P.psp_loss)
        (m.ifr if kind == "ifr" else m.sfr).requires_grad_(True).train()
        if kind == "ifr":
            return IFRStage(m, self.d1, self.P.loss, lr=s.lr, betas=s.betas)
        return SFRStage(m, self.d2, self.vgg, self.P.loss, lr=s.lr, betas=s.betas)


class Stepper:
    """``train_step`` as ``fit`` runs it: a ``StepContext`` (one GradScaler per optimizer under fp16), the step
    counter, one host sync for the losses; ``hist`` keeps every step's losses."""

    def __init__(self, stage: Any, ck: Check, prec: str, data: Any, nets: dict | None = None, dist: Any = None):
        from isfr.training.context import StepContext

        amp, on = ck.amp(prec)
        opts = stage.optimizers()
        self.scalers = {k: torch.amp.GradScaler(ck.dev.type, enabled=on) for k in opts} if prec == "fp16" else {}
        names = {id(o): k for k, o in opts.items()}
        self.ctx = StepContext(nets or stage.modules(), ck.dev, amp, self.scalers, names, dist)
        self.stage, self.data, self.hist = stage, data, []

    def __call__(self) -> dict[str, float]:
        self.ctx.step += 1
        out = self.stage.train_step(self.data() if callable(self.data) else self.data, self.ctx)
        self.hist.append({k: float(v) for k, v in out.items()})
        return self.hist[-1]

    def finite(self) -> bool:
        return all(math.isfinite(v) for h in self.hist for v in h.values()) and all(
            bool(torch.isfinite(p).all()) for m in self.stage.modules().values() for p in m.parameters())


def batch(b: int, res: int, dev: torch.device, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random images in [-1, 1], each with a random square hole of a quarter of its area."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(b, 1, res, res)
    for i in range(b):
        y, x = torch.randint(0, res // 2, (2,), generator=g).tolist()
        mask[i, :, y: y + res // 2, x: x + res // 2] = 1
    return {"image": (torch.rand(b, 3, res, res, generator=g) * 2 - 1).to(dev), "mask": mask.to(dev)}


def mem_reset(dev: torch.device) -> None:
    """Start a peak-memory measurement (:func:`mem_peak`)."""
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)
    else:
        reset_peak_rss()


def mem_peak(dev: torch.device) -> float:
    """MiB: ``torch.cuda.max_memory_allocated`` on CUDA, the process's RSS high-water mark on the CPU."""
    return torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else peak_rss_mib()


def placement(ck: Check, parts: Parts) -> list[dict]:
    """1. Every parameter, buffer, gradient and output of every stage on ``ck.dev`` after a forward / step."""
    rows, dev, m = [], ck.dev, parts.model

    def off(mod: torch.nn.Module) -> list[str]:
        named = [*mod.named_parameters(), *mod.named_buffers(),
                 *((f"{n}.grad", p.grad) for n, p in mod.named_parameters() if p.grad is not None)]
        return [n for n, t in named if t.device.type != dev.type]

    for name, mod in (("pSp encoder", m.stage1.encoder), ("StyleGAN2 generator", m.stage1.decoder),
                      ("stage 1 (+ latent_avg)", m.stage1), ("IFR", m.ifr), ("SFR", m.sfr), ("D1", parts.d1),
                      ("D2", parts.d2), ("VGG-16 features", parts.vgg), ("ISFRNet (all)", m)):
        bad = off(mod)
        rows.append({"check": name, "params (M)": sum(p.numel() for p in mod.parameters()) / 1e6,
                     "buffers": len(list(mod.buffers())), "ok": ck.ok(not bad, f"placement {name}: {bad[:3]}"),
                     "detail": f"{len(bad)} tensors off {dev.type}" if bad else f"all on {dev.type}"})
    b = batch(1, parts.P.data.resolution, dev)
    with torch.no_grad():
        out = m.eval()(b["image"], b["mask"])
        out["d1"] = parts.d1(out["composite"])
    bad = [k for k, v in out.items() if v.device.type != dev.type]
    rows.append({"check": "ISFRNet forward + D1", "ok": ck.ok(not bad, f"outputs {bad} off {dev.type}"),
                 "detail": ", ".join(f"{k} {tuple(v.shape)}" for k, v in out.items())})
    for kind in ("psp", "ifr", "sfr"):
        step = Stepper(parts.stage(kind), ck, "fp32", b)
        res = step.stage.train_step(b, step.ctx)
        bad = [k for k, v in res.items() if v.device.type != dev.type]
        bad += [n for mod in [*step.stage.modules().values(), *step.stage.frozen()] for n in off(mod)]
        rows.append({"check": f"{kind} train step (trained + frozen modules, grads, losses)",
                     "ok": ck.ok(not bad, f"{kind} step: {bad[:3]} off {dev.type}"),
                     "detail": ", ".join(f"{k}={float(v):.3g}" for k, v in res.items())})
    return rows


def amp_steps(ck: Check, parts: Parts) -> list[dict]:
    """2. IFR and SFR steps under fp16 autocast + GradScaler and under bf16 autocast: losses and weights finite."""
    rows = []
    for prec in ("fp16", "bf16"):
        for kind in ("ifr", "sfr"):
            step = Stepper(parts.stage(kind), ck, prec, batch(2, parts.P.data.resolution, ck.dev, seed=1))
            t0 = time.perf_counter()
            for _ in range(ck.amp_steps):
                step()
            amp, on = ck.amp(prec)
            rows.append({"stage": kind, "precision": prec, "autocast": amp, "steps": ck.amp_steps,
                         "GradScaler": "on" if on else "enabled=False" if prec == "fp16" else "-",
                         "first loss": step.hist[0]["loss"], "last loss": step.hist[-1]["loss"],
                         "scale": " ".join(f"{k}={s.get_scale():g}" for k, s in step.scalers.items()) if on else "-",
                         "finite": ck.ok(step.finite(), f"{kind} {prec}: non-finite loss or weights"),
                         "s": time.perf_counter() - t0})
    return rows


def ddp_worker(argv: list[str]) -> None:
    """Under torchrun: IFR and SFR steps through DDP-wrapped modules, each rank on other data; rank 0 writes JSON."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from isfr.training import distributed as D

    ck, json_path = Check("--dry" in argv), Path(argv[argv.index("--json") + 1])
    backend = "gloo" if ck.dry else "nccl"
    if ck.dry:
        torch.set_num_threads(1)
    info = D.init_distributed(backend)
    if not dist.is_initialized():  # one process: init_distributed leaves it alone, so join a group of one
        if backend == "nccl":
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend, init_method="env://")
    info, rows = D.dist_info(), []
    ck.dev = D.default_device(info) if backend == "nccl" else torch.device("cpu")
    parts = Parts(preset(ck.preset), ck.dev)
    try:
        for kind in ("ifr", "sfr"):
            stage = parts.stage(kind)
            mods = stage.modules()
            ids = [ck.dev.index] if ck.dev.type == "cuda" else None
            nets = D.wrap_ddp(mods, ck.dev) if info.enabled else {  # wrap_ddp is the identity in one process
                k: DistributedDataParallel(v, device_ids=ids, find_unused_parameters=True) for k, v in mods.items()}
            flat = {k: lambda v=v: torch.cat([p.detach().flatten() for p in v.parameters()]) for k, v in mods.items()}
            init = {k: f().clone() for k, f in flat.items()}
            data = batch(2, parts.P.data.resolution, ck.dev, seed=100 + info.rank)  # other data on each rank
            step = Stepper(stage, ck, "fp16", data, nets, info)
            times = time_calls(step, ck.dev, warmup=1, repeats=ck.ddp_steps - 1)
            diff, moved = torch.zeros((), device=ck.dev), 0.0
            for k, f in flat.items():
                ref = f().clone()
                dist.broadcast(ref, 0)
                diff = torch.maximum(diff, (f() - ref).abs().max())
                moved = max(moved, float((f() - init[k]).abs().max()))
            dist.all_reduce(diff, op=dist.ReduceOp.MAX)
            rows.append({"stage": kind, "precision": ck.amp("fp16")[0], "steps": ck.ddp_steps,
                         "s/step": min(times), "max |param - rank 0|": float(diff),
                         "params moved": moved, "finite": step.finite()})
        if info.is_main:
            json_path.write_text(json.dumps({"world": info.world_size, "backend": dist.get_backend(), "rows": rows}))
    finally:
        D.cleanup()


def ddp(ck: Check) -> list[dict]:
    """3. ``ddp_worker`` under ``torch.distributed.run``: 1 process (GPU), 2 (2+ GPUs; gloo on the CPU)."""
    rows: list[dict] = []
    n_gpu = 0 if ck.dry else torch.cuda.device_count()
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    for n in [2] if ck.dry else [1, 2][: n_gpu]:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "ddp.json"
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}",
                   str(Path(__file__).resolve()), "_ddp", "--json", str(out)] + ["--dry"] * ck.dry
            t0 = time.perf_counter()
            p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)  # a hang raises: FAIL
            wall, tail = time.perf_counter() - t0, (p.stderr + p.stdout).strip()[-2000:]
            if p.returncode != 0 or not out.exists():
                print(tail, file=sys.stderr)
                rows.append({"processes": n, "wall s": wall, "ok": ck.ok(False, f"DDP x{n}: exit {p.returncode}"),
                             "detail": (tail.splitlines() or [""])[-1][:200]})
                continue
            res = json.loads(out.read_text())
        for r in res["rows"]:
            good = r.pop("finite") and r["max |param - rank 0|"] == 0 and r["params moved"] > 0
            rows.append({"processes": res["world"], "backend": res["backend"], **r, "wall s": wall,
                         "ok": ck.ok(good, f"DDP x{n} {r['stage']}: {r}")})
    if not ck.dry and n_gpu < 2:
        rows.append({"processes": 2, "ok": "skipped", "detail": f"{n_gpu} GPU: NCCL needs one GPU per process"})
    return rows


def inference(ck: Check, parts: Parts) -> list[dict]:
    """4. Images/s of the whole pipeline, masked image + mask -> composite, per precision and batch."""
    rows, m = [], parts.model.eval()
    for prec in PRECISIONS:
        amp = {"none": "fp32"}.get(ck.amp(prec)[0], ck.amp(prec)[0])
        for b in ck.batches_inf:
            if ck.elapsed() > 0.45 * ck.budget_s:
                rows.append({"precision": prec, "batch": b, "note": "skipped: time budget"})
                continue
            x, last = batch(b, parts.P.data.resolution, ck.dev), []
            mem_reset(ck.dev)

            def fn() -> None:
                with torch.no_grad(), autocast(ck.dev, amp):
                    last[:] = [m(x["image"], x["mask"])["composite"]]

            t = summarize(time_calls(fn, ck.dev, ck.warmup, ck.repeats, 1, ck.time_s))
            rows.append({"precision": prec, "autocast": amp, "batch": b, "img/s": b / t["min_s"],
                         "ms/batch (min)": 1e3 * t["min_s"], "ms/batch (median)": 1e3 * t["median_s"], "calls": t["n"],
                         "peak MiB": mem_peak(ck.dev),
                         "finite": ck.ok(bool(torch.isfinite(last[0]).all()), f"inference {prec} x{b}: non-finite")})
    return rows


def train_steps(ck: Check, parts: Parts) -> list[dict]:
    """5. Seconds per training step of each stage per precision and batch; peak memory per measurement."""
    rows, P = [], parts.P
    names = {"psp": "pSp encoder" + ("" if P.schedule.psp_steps else " (frozen in this preset; psp.finetune)"),
             "ifr": "IFR + D1", "sfr": "SFR + D2 + VGG"}
    for kind in ("psp", "ifr", "sfr"):
        for prec in PRECISIONS:
            for b in ck.batches_train:
                row = {"stage": names[kind], "precision": prec, "autocast": ck.amp(prec)[0], "batch": b}
                if ck.elapsed() > 0.75 * ck.budget_s:
                    rows.append({**row, "note": "skipped: time budget"})
                    continue
                step = Stepper(parts.stage(kind), ck, prec, batch(b, P.data.resolution, ck.dev, seed=2))
                mem_reset(ck.dev)
                t = summarize(time_calls(step, ck.dev, ck.warmup, ck.repeats, ck.min_repeats, ck.time_s))
                rows.append({**row, "s/step (min)": t["min_s"], "s/step (median)": t["median_s"],
                             "img/s": b / t["min_s"], "steps": t["n"], "peak MiB": mem_peak(ck.dev), "_kind": kind,
                             "finite": ck.ok(step.finite(), f"{kind} {prec} x{b}: non-finite")})
                del step
    return rows


def mini_training(ck: Check) -> list[dict]:
    """6. IFR, then SFR (IFR frozen), on synthetic faces + procedural masks. Checked: the generator objective
    without its adversarial term (that term rises as D learns) drops >= 10 % from the first to the last window."""
    import numpy as np

    from isfr.data import BUCKETS, draw_face, image_to_tensor, procedural_mask

    widths, steps, win, b = ck.mini
    P = preset(widths)
    res, n = P.data.resolution, 64 if ck.dry else 512
    faces = torch.stack([image_to_tensor(draw_face(7, i, res)) for i in range(n)]).to(ck.dev)
    masks = torch.stack([torch.from_numpy(procedural_mask(BUCKETS[i % 6], res, 7000 + i).astype(np.float32))[None]
                         for i in range(n)]).to(ck.dev)
    g = torch.Generator().manual_seed(0)

    def data() -> dict[str, torch.Tensor]:
        i, j = torch.randint(0, n, (b,), generator=g), torch.randint(0, n, (b,), generator=g)
        return {"image": faces[i.to(ck.dev)], "mask": masks[j.to(ck.dev)]}

    parts, rows = Parts(P, ck.dev), []
    for kind in ("ifr", "sfr"):
        step = Stepper(parts.stage(kind), ck, "fp16", data)  # the paper preset's schedule.amp
        lam = P.loss.lambda2_adv if kind == "ifr" else P.loss.lambda7_adv
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        row = {"stage": kind, "widths": widths, "px": res, "batch": b, "precision": ck.amp("fp16")[0],
               "lr": P.schedule.lr, "steps": steps}
        for name, vals in (("loss", [h["loss"] for h in step.hist]),
                           ("objective", [h["loss"] - lam * h.get("adv", 0.0) for h in step.hist])):
            first, last = sum(vals[:win]) / win, sum(vals[-win:]) / win
            row.update({f"{name}: first {win}": first, f"{name}: last {win}": last,
                        f"{name} drop %": 100 * (first - last) / abs(first) if first else float("nan")})
        good = step.finite() and row["objective drop %"] >= 10
        what = f"mini-training {kind}: objective drop {row['objective drop %']:.1f} % < 10 % (or non-finite)"
        ok = f"{'yes' if good else 'no'} (not enforced in --dry)" if ck.dry else ck.ok(good, what)
        rows.append({**row, "s": time.perf_counter() - t0, "ok": ok})
    return rows


def projection(ck: Check, P: Any, steps5: list[dict], inf4: list[dict]) -> list[dict]:
    """7. Hours of every run the preset trains (main + ablation budget, shared runs once), its validation, test."""
    from isfr.experiments.runs import VARIANTS, ablation_variants, stage_runs

    s, amp = P.schedule, {"none": "fp32"}.get(P.schedule.amp, P.schedule.amp)
    per = {r["_kind"]: r["s/step (min)"] for r in steps5 if "_kind" in r and r["precision"] == amp and r["batch"] == 1}
    s_img = {(r["precision"], r["batch"]): 1 / r["img/s"] for r in inf4 if "img/s" in r}
    jobs = [("full", "main")] + [(v, "ablation") for v in ablation_variants(P)]

    def used(v: str, budget: str) -> tuple:
        return tuple((k, r) for k, r in stage_runs(P, v, budget).items() if getattr(VARIANTS[v], f"use_{k}"))

    runs = {"psp": ("psp", s.psp_steps, "stage 1")} if s.psp_steps else {}
    for v, budget in jobs:
        for kind, (run, n) in used(v, budget):
            runs.setdefault(run, (kind, n, f"{v} @ {budget}"))
    rows, total, val_pairs, nan = [], 0.0, s.val_images * 6, float("nan")
    for run, (kind, n, first) in runs.items():
        train_h = n * per.get(kind, nan) / 3600
        val_h = (math.ceil(n / s.val_every) if s.val_every else 0) * val_pairs * s_img.get((amp, 1), nan) / 3600
        total += train_h + val_h
        rows.append({"run": run, "stage": kind, "first needed by": first, "steps": n, "s/step": per.get(kind, nan),
                     "train h": train_h, "val h": val_h, "h": train_h + val_h})
    models, pairs = len({used(v, b) for v, b in jobs}), (s.test_images or 0) * 6
    eb = min(8, max((b for _, b in s_img), default=8))  # evaluate() runs fp32 at batch 8
    test_h = models * pairs * s_img.get(("fp32", eb), nan) / 3600
    rows += [{"run": f"test inference: {models} models x {pairs} pairs (fp32, batch {eb})", "h": test_h},
             {"run": f"TOTAL on one GPU ({(total + test_h) / 24:.1f} days)", "h": total + test_h}]
    stage1 = (f"stage 1: pretrained pSp, frozen (psp_steps={s.psp_steps})" if ck.preset == "paper"
              else f"stage-1 StyleGAN2 ({s.stylegan_steps} steps) not costed")
    ck.notes.append(f"section 7: s/step = section 5 at batch 1 ({amp}); validation every {s.val_every} steps on "
                    f"{val_pairs} pairs at section 4's batch-1 {amp} s/image; {stage1}; checkpoints, data loading "
                    "and the CPU metrics (LPIPS, SSIM, dlib identity) not counted; pSp+SFR costed as a full SFR step")
    return rows


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_ddp"]:
        ddp_worker(argv[1:])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry", action="store_true", help="every section at smoke size on the CPU (CI)")
    ap.add_argument("--out", default=None, help="report .md or folder (default benchmarks/results/; --dry: temp)")
    ap.add_argument("--budget", type=float, default=None, help="seconds after which sections 4-5 skip what is left "
                                                                "(default 300; --dry: none)")
    args = ap.parse_args(argv)
    if not args.dry and not torch.cuda.is_available():
        sys.exit(NO_CUDA)
    ck = Check(args.dry, args.budget or (math.inf if args.dry else 300.0))
    if ck.dry:
        torch.set_num_threads(1)
    name = "dry-cpu" if ck.dry else re.sub(r"[^a-z0-9]+", "-", torch.cuda.get_device_name().lower()).strip("-")
    folder = Path(args.out or (tempfile.mkdtemp(prefix="gpu_check_") if ck.dry else REPO / "benchmarks" / "results"))
    out = folder if folder.suffix == ".md" else folder / f"gpu_{name}.md"
    gpus = 0 if ck.dry else torch.cuda.device_count()
    extra = [f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}; {gpus} GPU(s)"
             + "".join(f"; cuda:{i} {torch.cuda.get_device_name(i)}" for i in range(gpus)),
             f"widths: preset {ck.preset!r} with psp.checkpoint=None (random weights), random VGG-16 features; "
             "no pretrained file read"]
    if ck.dry:
        extra.append("--dry substitutions: CPU for CUDA; fp16 = bf16 autocast + GradScaler(enabled=False); DDP over "
                     "gloo, 2 processes; batches 1 / 2; mini-training 60 steps at batch 2 (windows of 10), smoke "
                     "widths, loss-drop check reported only (60 smoke steps are too few to be reliable)")
    header = env_header("ISFRNet GPU check" + (" (--dry)" if ck.dry else ""), ck.dev, extra)
    print(header + "\n", flush=True)
    tables: list[tuple[str, list[dict], list[str]]] = []

    def section(title: str, fn: Callable[[], list[dict]]) -> list[dict]:
        """Run one section; its table's columns are its rows' keys (``_``-keys hidden); an exception is a FAIL row."""
        print(f"## {title} ...", flush=True)
        t0 = time.perf_counter()
        try:
            rows = fn()
        except Exception as e:  # noqa: BLE001 - a one-shot check reports everything it can
            traceback.print_exc()
            err = f"{type(e).__name__}: {e}"
            rows = [{"error": ck.ok(False, f"{title}: {err}"), "detail": err[:300]}]
        cols = list(dict.fromkeys(k for r in rows for k in r if not k.startswith("_")))
        tables.append((f"{title} ({time.perf_counter() - t0:.1f} s)", rows, cols))
        return rows

    P, t0 = preset(ck.preset), time.perf_counter()
    parts = Parts(P, ck.dev)
    ck.notes.append(f"building the {ck.preset} pipeline (random init, .to({ck.dev.type})): "
                    f"{time.perf_counter() - t0:.1f} s")
    section("1. Placement of every stage on the device", lambda: placement(ck, parts))
    section("2. Mixed precision: fp16 autocast + GradScaler, bf16 autocast", lambda: amp_steps(ck, parts))
    section("3. DDP (" + ("gloo, CPU" if ck.dry else "NCCL") + ")", lambda: ddp(ck))
    inf4 = section("4. Inference of the whole pipeline", lambda: inference(ck, parts))
    steps5 = section(f"5. Training: seconds per step at {P.data.resolution} px", lambda: train_steps(ck, parts))
    parts = None  # free the paper-size pipeline before section 6
    if ck.dev.type == "cuda":
        torch.cuda.empty_cache()
    section(f"6. Mini-training on synthetic faces ({ck.mini[1]} steps per stage)", lambda: mini_training(ck))
    section(f"7. Projected wall time of the {ck.preset} preset (hours)", lambda: projection(ck, P, steps5, inf4))
    leaked = [m for m in ("lpips", "dlib") if m in sys.modules]
    ck.ok(not leaked, f"imported {leaked}")
    notes = [*ck.notes, ("peak MiB: torch.cuda.max_memory_allocated, weights included" if ck.dev.type == "cuda" else
                          "peak MiB: the process's RSS high-water mark (VmHWM), reset per measurement"),
             "sections 1-5: random images, each with a random quarter-area square hole; timings: warm-up, then the "
             "min / median of synchronised calls; autocast as the training loop uses it",
             "section 6: objective = the generator loss without its adversarial term (IFR: eq. 5's lambda1 L_rec; "
             "SFR: eq. 10 less lambda7 L_adv); faces from isfr.data.draw_face, procedural masks of the six buckets",
             f"total wall time {ck.elapsed():.0f} s; lpips / dlib imported: {leaked or 'no'}",
             *(f"FAILED: {f}" for f in ck.failures)]
    p = write_out(out, header, tables, notes)
    print("\n" + p.read_text() + f"\nwrote {p}")
    print(f"FAILED: {len(ck.failures)} check(s)" if ck.failures else "all checks passed")
    return 1 if ck.failures else 0


if __name__ == "__main__":
    sys.exit(main())
