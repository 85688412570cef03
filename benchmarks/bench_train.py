"""Training throughput and peak memory per stage: IFR + D1, SFR + D2 + VGG, pSp encoder, StyleGAN2 G + D.

Usage: ``python benchmarks/bench_train.py [--stages ifr sfr psp stylegan] [--widths small paper]
[--sizes 64 128 256] [--batch 1 8] [--amp none bf16] [--device cpu|cuda] [--out train_cpu.md] [--quick]``.

Stages are built as ``isfr.experiments.pipeline`` builds them (``isfr.training.stages`` + a
``StepContext`` from ``isfr.training.loop``), with random weights and random VGG-16 features
(``load_vgg16_features("random", allow_random=True)``), so no files are needed. One fixed random
batch is reused every step: data loading is not included (see ``bench_data.py``).

Widths: ``small`` / ``smoke`` = that preset's widths with every resolution set to the size; ``paper``
= the paper preset (pSp IR-SE-50 x1 with the 1024 px config-f generator pooled to the size, IFR /
SFR ngf 64, D ndf 64); its StyleGAN2 step trains a config-f generator at the size.
Default plan: small widths at 64 / 128 / 256 px, batch 1 and 8 (and 16 at 64 px, the ``small``
preset's batch), plus paper widths at 256 px batch 1; ``--sizes`` / ``--batch`` replace it.

Each configuration runs in a fresh process (forkserver): peak memory is the process's RSS
high-water mark (VmHWM, reset after the models are built, so "step MiB" = peak - RSS before the
first step: activations, gradients, optimiser state); on CUDA ``torch.cuda.max_memory_allocated``.
Timing: ``--warmup`` untimed steps, then up to ``--steps`` timed steps (at least 2 unless ``--steps 1``, stopping once
``--budget`` seconds are spent; only 1 when the warm-up step alone took longer than ``--budget``);
s/step = min (median also shown); img/s = batch / min.
StyleGAN2 steps include lazy R1 every 16 steps, amortised: + (R1 step - plain step) / 16, the R1 step
being the (timed) first warm-up step.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
                    env_header, loadavg, markdown_table, peak_rss_mib, reset_peak_rss, resolve_device, rss_mib, sync, write_out,
                    )

STAGES = ("ifr", "sfr", "psp", "stylegan")
STAGE_NAMES = {"ifr": "IFR + D1", "sfr": "SFR + D2 + VGG", "psp": "pSp encoder", "stylegan": "StyleGAN2 G + D"}
COLUMNS = ["stage", "widths", "px", "batch", "amp", "memory format", "threads", "steps", "min s/step", "median s/step", "img/s",
           "trained params (M)", "peak MiB", "step MiB"]
R1_EVERY = 16  # StyleGANStage default


# ----------------------------------------------------------------------------- building (child process)


def preset_for(widths: str, size: int, stage: str):
    """The preset of ``widths`` at ``size`` px (random weights everywhere)."""
    from isfr.experiments.config import get_preset

    if widths == "paper":
        over = {"resolution": size, "psp.checkpoint": None}
        if stage == "stylegan":  # config-f widths, trained at the working size
            over["stylegan.size"] = size
        return get_preset("paper", **over)
    return get_preset(widths, resolution=size)


def build_stage(name: str, widths: str, size: int, device: torch.device):
    """The stage object exactly as ``isfr.experiments.pipeline`` builds it (minus checkpoint loading)."""
    from isfr.models.backbones import load_vgg16_features
    from isfr.models.discriminators import PatchDiscriminator
    from isfr.models.isfrnet import ISFRNet, ISFRNetConfig
    from isfr.models.stylegan2 import Discriminator
    from isfr.training.stages import IFRStage, PSPStage, SFRStage, StyleGANStage

    p = preset_for(widths, size, name)
    s = p.schedule

    def vgg():
        return load_vgg16_features("random", allow_random=True, seed=p.seed, device=device)

    if name == "stylegan":
        model = ISFRNet(ISFRNetConfig.from_preset(p, use_sfr=False)).to(device)
        g = model.stage1.decoder
        d = Discriminator(p.stylegan.size, p.stylegan.channel_multiplier, channel_max=p.stylegan.channel_max).to(device)
        return StyleGANStage(g, d, lr=s.stylegan_lr)
    if name == "psp":
        model = ISFRNet(ISFRNetConfig.from_preset(p, use_sfr=False)).to(device)
        return PSPStage(model, vgg(), lr=s.lr, betas=s.betas)
    if name == "ifr":
        model = ISFRNet(ISFRNetConfig.from_preset(p, use_ifr=True, use_sfr=False)).to(device)
        return IFRStage(model, PatchDiscriminator(p.disc).to(device), p.loss, lr=s.lr, betas=s.betas)
    if name == "sfr":
        model = ISFRNet(ISFRNetConfig.from_preset(p)).to(device)
        return SFRStage(model, PatchDiscriminator(p.disc).to(device), vgg(), p.loss, lr=s.lr, betas=s.betas)
    raise ValueError(f"unknown stage {name!r}; choose from {STAGES}")


def make_batch(batch: int, size: int, device: torch.device) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    image = torch.rand(batch, 3, size, size, generator=g) * 2 - 1
    mask = torch.zeros(batch, 1, size, size)
    mask[:, :, size // 4: 3 * size // 4, size // 4: 3 * size // 4] = 1  # central hole, 25 %
    return {"image": image.to(device), "mask": mask.to(device)}


def measure(job: dict[str, Any]) -> dict[str, Any]:
    """Build one stage, run warm-up + timed steps, return timings and peak memory."""
    from isfr.training.context import StepContext

    if job.get("threads"):
        torch.set_num_threads(job["threads"])
    torch.manual_seed(0)
    device = torch.device(job["device"])
    stage = build_stage(job["stage"], job["widths"], job["size"], device)
    mods, opts = stage.modules(), stage.optimizers()
    scalers = {k: torch.amp.GradScaler("cuda") for k in opts} if job["amp"] == "fp16" else None
    ctx = StepContext(mods, device, job["amp"], scalers, {id(o): k for k, o in opts.items()})
    batch = make_batch(job["batch"], job["size"], device)
    if job.get("channels_last"):  # NHWC weights and inputs (oneDNN's preferred layout on the CPU)
        for t in (t for m in mods.values() for t in [*m.parameters(), *m.buffers()] if t.dim() == 4):
            t.data = t.data.contiguous(memory_format=torch.channels_last)  # 4-D only (StyleGAN2's weights are 5-D)
        batch = {k: v.contiguous(memory_format=torch.channels_last) for k, v in batch.items()}
    trained = sum(p.numel() for o in opts.values() for g in o.param_groups for p in g["params"])

    step_no = 0

    def step(r1: bool = False) -> float:
        nonlocal step_no
        step_no += 1
        ctx.step = R1_EVERY if r1 else (step_no if step_no % R1_EVERY else step_no + 1)
        t0 = time.perf_counter()
        out = stage.train_step(batch, ctx)
        float(sum(v.float().sum() for v in out.values() if torch.is_tensor(v)))  # the loop's one sync per step
        sync(device)
        return time.perf_counter() - t0

    rss0 = rss_mib()
    reset_peak_rss()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    # StyleGAN2: the first warm-up step is a lazy-R1 step, timed, to amortise R1 without an extra step
    t_r1 = step(r1=True) if job["stage"] == "stylegan" and job["warmup"] else None
    warm = [t_r1] if t_r1 is not None else []
    warm += [step() for _ in range(job["warmup"] - len(warm))]
    n = job["steps"]
    if warm and warm[-1] > job["budget"]:  # a slow configuration: one timed step is all it gets
        n = min(n, 1)
    times: list[float] = []
    while len(times) < n:
        times.append(step())
        if len(times) >= min(2, n) and sum(times) > job["budget"]:
            break
    t_min, t_med = min(times), statistics.median(times)
    if job["stage"] == "stylegan":
        extra = max(0.0, (t_r1 if t_r1 is not None else step(r1=True)) - t_min) / R1_EVERY
        t_min, t_med = t_min + extra, t_med + extra
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
        delta = peak
    else:
        peak = peak_rss_mib()
        delta = peak - rss0
    return {"steps": len(times), "min_s": t_min, "median_s": t_med, "trained": trained, "peak": peak, "delta": delta,
            "threads": torch.get_num_threads()}  # what the timed steps ran at, in this (isolated) process


def _child(job: dict[str, Any], conn) -> None:
    try:
        conn.send(("ok", measure(job)))
    except BaseException as e:  # noqa: BLE001 - report anything, e.g. out of memory
        conn.send(("error", f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}"))
    finally:
        conn.close()


def run_isolated(job: dict[str, Any], ctx: mp.context.BaseContext, timeout: float) -> tuple[str, Any]:
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(job, send))
    proc.start()
    send.close()
    t0 = time.monotonic()
    result: tuple[str, Any] | None = None
    while result is None and time.monotonic() - t0 < timeout:
        if recv.poll(0.5):
            try:
                result = recv.recv()
            except EOFError:
                break
        elif not proc.is_alive() and not recv.poll(0.1):
            break
    if proc.is_alive() and result is None:
        proc.kill()
    proc.join()
    return result or ("error", f"process ended without a result (exit code {proc.exitcode})")


# ----------------------------------------------------------------------------- plan (parent)


def plan(args: argparse.Namespace) -> list[tuple[str, int, int]]:
    """(widths, size, batch) triples to run."""
    out = []
    for w in args.widths:
        if args.sizes or args.batch:
            sizes = args.sizes or ([256] if w == "paper" else [64, 128, 256])
            batches = args.batch or ([1] if w == "paper" else [1, 8])
            out += [(w, s, b) for s in sizes for b in batches]
        elif w == "paper":
            out.append((w, 256, 1))
        else:
            out += [(w, s, b) for s in (64, 128, 256) for b in ((1, 8, 16) if s == 64 else (1, 8))]
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    ap.add_argument("--widths", nargs="+", choices=["smoke", "small", "paper"], default=["small", "paper"])
    ap.add_argument("--sizes", type=int, nargs="+", default=None, help="px (default: see the plan above)")
    ap.add_argument("--batch", type=int, nargs="+", default=None, help="batch sizes (default: see the plan above)")
    ap.add_argument("--amp", nargs="+", choices=["none", "bf16", "fp16"], default=["none", "bf16"],
                    help="none = fp32; bf16 / fp16 autocast as the training loop does it (fp16: CUDA)")
    ap.add_argument("--memory-format", nargs="+", choices=["contiguous", "channels_last"], default=["contiguous"],
                    help="module weights and batch in NCHW (contiguous) and/or NHWC (channels_last)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads in each run")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--steps", type=int, default=4, help="timed steps at most (at least 2 unless 1 is asked)")
    ap.add_argument("--budget", type=float, default=4.0, help="stop timing a configuration after this many seconds")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per configuration before it is killed")
    ap.add_argument("--note", action="append", default=[], help="a line for the header (repeatable)")
    ap.add_argument("--out", default=None, help="also write the table: NAME.md or NAME.csv (bare names go to "
                                                 "benchmarks/results/)")
    ap.add_argument("--quick", action="store_true", help="smoke widths, 64 px, batch 2, fp32, 1 timed step")
    args = ap.parse_args(argv)
    if args.quick:
        args.widths, args.sizes, args.batch, args.amp = ["smoke"], [64], [2], ["none"]
        args.warmup, args.steps, args.budget = 1, 1, 0.0
    device = resolve_device(args.device)
    if args.threads:  # the runs set it in their own process; set it here too so the header says so
        torch.set_num_threads(args.threads)
    if "fp16" in args.amp and device.type != "cuda":
        raise SystemExit("--amp fp16 needs --device cuda (on the CPU use bf16)")

    mpctx = mp.get_context("forkserver")
    mpctx.set_forkserver_preload(["torch", "isfr.training.stages", "isfr.models.backbones"])
    header = env_header("ISFRNet training benchmark", device, args.note)
    print(header + "\n", flush=True)
    print("| " + " | ".join(COLUMNS) + " |", flush=True)
    rows, errors = [], []
    t_start = time.monotonic()
    for widths, size, batch in plan(args):
        for stage in args.stages:
            for amp, fmt in [(a, f) for a in args.amp for f in args.memory_format]:
                job = {"stage": stage, "widths": widths, "size": size, "batch": batch, "amp": amp,
                       "device": str(device), "threads": args.threads, "warmup": args.warmup,
                       "steps": args.steps, "budget": args.budget, "channels_last": fmt == "channels_last"}
                status, res = run_isolated(job, mpctx, args.timeout)
                row: dict[str, Any] = {"stage": STAGE_NAMES[stage], "widths": widths, "px": size, "batch": batch,
                                       "amp": "fp32" if amp == "none" else amp, "memory format": fmt}
                if status == "ok":
                    row.update({"threads": res["threads"], "steps": res["steps"], "min s/step": res["min_s"], "median s/step": res["median_s"],
                                "img/s": batch / res["min_s"], "trained params (M)": res["trained"] / 1e6,
                                "peak MiB": res["peak"], "step MiB": res["delta"]})
                else:
                    row["steps"] = "error"
                    errors.append(f"{row}: {res}")
                rows.append(row)
                print(markdown_table([row], COLUMNS).splitlines()[-1], flush=True)
    wall = time.monotonic() - t_start
    mem = ("peak MiB = torch.cuda.max_memory_allocated; step MiB = the same" if device.type == "cuda" else
           "peak MiB = process RSS high-water mark (VmHWM) over the steps; step MiB = peak - RSS after building "
           "the stage (activations, gradients, Adam state, allocator caches)")
    notes = [
        "stages built as isfr.experiments.pipeline does (random weights, random VGG-16 features), StepContext from "
        "isfr.training.loop; one fixed batch (no data loading); central 25 % hole",
        f"timing: {args.warmup} warm-up step(s), then up to {args.steps} timed steps (>= 2, stopping after "
        f"{args.budget:g} s; 1 when the warm-up step took > {args.budget:g} s); s/step = min; img/s = batch / min",
        "StyleGAN2 G + D: one D step + one G step (+ lazy R1 every 16 steps, amortised into s/step: "
        "(first warm-up step, with R1, - min) / 16)",
        "IFR / SFR steps include the frozen stage-1 (and IFR) forward that training runs every step",
        "paper widths: pSp IR-SE-50 x1 (18 styles) + 1024 px config-f G pooled to 256, IFR / SFR ngf 64, D ndf 64; "
        "the StyleGAN2 row is config-f trained at 256 px (the paper uses a pretrained generator)",
        mem,
        f"load average (1/5/15 min) at end: {loadavg()}; total wall time {wall / 60:.1f} min",
    ]
    print("\n" + markdown_table(rows, COLUMNS))
    print("\n" + "\n".join(f"- {n}" for n in notes))
    for e in errors:
        print(f"\nERROR {e}", file=sys.stderr)
    if args.out:
        p = write_out(args.out, header, [("Training: seconds per step, images/s, peak memory", rows, COLUMNS)], notes)
        print(f"\nwrote {p}")
    if errors:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
