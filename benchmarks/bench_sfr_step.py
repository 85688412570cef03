"""What one SFR training step of a preset costs, part by part, against the learned U-Net's step.

Usage: ``python benchmarks/bench_sfr_step.py [--preset small] [--threads 1] [--repeats 5] [--quick]
[--out sfr_step_cpu.md]``.

The parts, timed separately on one fixed batch at the preset's batch size, resolution and precision (random
weights, random VGG-16 features where the loss weights them, central 25 % hole, no data loading): the whole
``SFRStage.train_step`` with the preset's guess dropout (stages 1-2 run only for the samples whose E_C reads the
guess) and with stages 1-2 run for the whole batch (``guess_dropout=0``, the step of the recipe freeze of
2026-12-01, commit d5c2f8e); stages 1-2's forward alone (fp32, no grad, whole batch); the SFR's forward + backward
on L1 alone; one D2 step; and the U-Net baseline's whole step (L1). Time = median of ``--repeats`` calls after one
warm-up call. The parts do not add up to the step exactly: the step also runs eq. 10's terms, D2's forward for the
adversarial term and both optimisers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import make_batch  # noqa: E402  (the same fixed batch: seed 0, central 25 % hole)
from common import env_header, loadavg, markdown_table, summarize, time_calls, write_out  # noqa: E402

COLUMNS = ["part", "median s", "min s", "share of the step", "calls"]


def build(preset: str):
    from isfr.models.backbones import load_vgg16_features
    from isfr.experiments.config import get_preset
    from isfr.models.discriminators import PatchDiscriminator
    from isfr.models.isfrnet import ISFRNet, ISFRNetConfig
    from isfr.models.unet import UNet
    from isfr.training.context import StepContext
    from isfr.experiments.pipeline import L1_ONLY
    from isfr.training.stages import SFRStage

    p = get_preset(preset)
    s, r, cpu = p.schedule, p.data.resolution, torch.device("cpu")
    torch.manual_seed(p.seed)
    model = ISFRNet(ISFRNetConfig.from_preset(p))

    def context(stage):
        opts = stage.optimizers()
        ctx = StepContext(stage.modules(), cpu, s.amp, None, {id(o): k for k, o in opts.items()})
        ctx.step = 1
        return ctx

    d2 = PatchDiscriminator(p.disc)
    vgg = load_vgg16_features("random", allow_random=True, seed=p.seed, device=cpu) if p.loss.uses_vgg else None
    stages = {g: SFRStage(model, d2, vgg, p.loss, lr=s.sfr_lr or s.lr, guess_dropout=g)
              for g in sorted({s.sfr_guess_dropout, 0.0})}
    unet = SFRStage(None, None, None, L1_ONLY, lr=s.unet_lr, generator=UNet(p.unet), key="unet", guess="none")
    return p, stages, unet, context, make_batch(s.batch_size, r, cpu)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="small")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="one timed call per part (the tests' check that it runs)")
    ap.add_argument("--out", default="sfr_step_cpu.md", help="bare name: benchmarks/results/; empty: print only")
    args = ap.parse_args(argv)
    if args.quick:
        args.repeats = 1
    torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    p, stages, unet, context, batch = build(args.preset)
    image, mask = batch["image"], batch["mask"]
    drop = p.schedule.sfr_guess_dropout
    main_stage, ctx = stages[drop], context(stages[drop])
    inputs = main_stage._inputs(image, mask)

    def sfr_l1():
        with ctx.autocast():
            out = ctx.nets["sfr"](*inputs)
        out.float().abs().mean().backward()

    with torch.no_grad(), ctx.autocast():
        fake = ctx.nets["sfr"](*inputs).float()
    parts = [(f"SFR train_step, guess dropout {drop:g} (stages 1-2 on the guess-reading samples)",
              lambda: main_stage.train_step(batch, ctx))]
    if drop:
        full_ctx = context(stages[0.0])
        parts.append(("SFR train_step, stages 1-2 on the whole batch (guess dropout 0)",
                      lambda: stages[0.0].train_step(batch, full_ctx)))
    uctx = context(unet)
    parts += [("stages 1-2 forward, whole batch (fp32, no grad)", lambda: main_stage._inputs(image, mask)),
              ("SFR forward + backward, L1 only", sfr_l1),
              ("D2 step", lambda: main_stage.d_step(image, fake, ctx)),
              ("U-Net train_step (L1)", lambda: unet.train_step(batch, uctx))]
    header = env_header(f"One SFR training step, preset {p.name!r}, part by part", cpu, [
        f"batch {p.schedule.batch_size}, {p.data.resolution} px, amp {p.schedule.amp}, SFR layout "
        f"{p.sfr.layout!r} ngf {p.sfr.ngf}, norm {p.sfr.norm}; random weights, one fixed batch, central 25 % hole"])
    rows, step = [], None
    for name, fn in parts:
        t = summarize(time_calls(fn, cpu, warmup=1, repeats=args.repeats))
        step = step or t["median_s"]
        rows.append({"part": name, "median s": t["median_s"], "min s": t["min_s"],
                     "share of the step": f"{t['median_s'] / step:.0%}", "calls": t["n"]})
        print(f"{name}: {t['median_s']:.3f} s", flush=True)
    notes = [__doc__.split("\n\n")[1].replace("\n", " "), f"load average (1/5/15 min) at end: {loadavg()}"]
    print("\n" + markdown_table(rows, COLUMNS))
    if args.out:
        print("wrote", write_out(args.out, header, [("Seconds per call", rows, COLUMNS)], notes))


if __name__ == "__main__":
    main()
