"""Model size, FLOPs and inference latency of every ISFRNet module and of the whole pipeline.

Usage: ``python benchmarks/bench_models.py [--sizes smoke small paper] [--batch 1 8]
[--dtype fp32 bf16] [--repeats N] [--device cpu|cuda] [--out models_cpu.md] [--quick]``.

Sizes are the presets (``isfr.experiments.config.get_preset``): ``paper`` = 256 px working resolution, official
pSp encoder layout (IR-SE-50, 18 styles), 1024 px config-f StyleGAN2 generator pooled to 256,
IFR / SFR ngf 64, D1 / D2 ndf 64; ``small`` and ``smoke`` = the reduced 64 px models. Weights are
random (``psp.checkpoint=None``): speed does not depend on them.

GFLOPs: ``torch.utils.flop_counter.FlopCounterMode`` on one forward pass at batch 1 (it counts
2 FLOPs per multiply-add of convolutions / matmuls; element-wise ops are not counted). Latency:
``torch.inference_mode``, warm-up, then min / median of the timed runs; img/s = batch / min.
Default batches: 1 and 8 for the reduced presets, 1 for the paper size (``--batch`` sets all).
Targets (fp32, batch 1, CPU, on the min): generator 1024 <= 1.5 s, encoder <= 1.0 s,
whole paper-size pipeline <= 3.0 s per image.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import autocast, env_header, loadavg, markdown_table, resolve_device, summarize, time_calls, write_out  # noqa: E402

from isfr.experiments.config import get_preset  # noqa: E402
from isfr.models.discriminators import PatchDiscriminator  # noqa: E402
from isfr.models.isfrnet import ISFRNet, ISFRNetConfig  # noqa: E402

SIZES = ("smoke", "small", "paper")
# (size, module) -> max seconds per image (fp32, batch 1, CPU)
TARGETS = {("paper", "StyleGAN2 G"): 1.5, ("paper", "pSp encoder"): 1.0, ("paper", "pipeline"): 3.0}
COLUMNS = ["size", "module", "params (M)", "GFLOPs", "dtype", "batch", "threads", "runs", "min ms", "median ms", "img/s",
           "target"]


@dataclass
class Bench:
    name: str
    params: int
    make: Callable[[int, torch.device], Callable[[], object]]  # (batch, device) -> closure to time


def build(size: str, device: torch.device) -> tuple[str, list[Bench]]:
    """Modules of preset ``size`` (random weights, eval mode) and how to call each at a batch size."""
    preset = get_preset(size, **({"psp.checkpoint": None} if size == "paper" else {}))
    model = ISFRNet(ISFRNetConfig.from_preset(preset)).eval().to(device)
    disc = PatchDiscriminator(preset.disc).eval().to(device)
    r, s1 = preset.data.resolution, model.stage1
    enc, gen = s1.encoder, s1.decoder
    gen_name = "StyleGAN2 G"
    desc = f"{r} px; G {gen.size} px" + (f" pooled to {r}" if gen.size != r else "") + \
        f"; encoder IR-SE-{preset.psp.num_layers} x{preset.psp.width:g}, {enc.n_styles} styles; " \
        f"IFR ngf {preset.ifr.ngf}; SFR ngf {preset.sfr.ngf}; D ndf {preset.disc.ndf}"

    def inputs(b: int, dev: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(0)
        img = torch.rand(b, 3, r, r, generator=g) * 2 - 1
        mask = torch.zeros(b, 1, r, r)
        mask[:, :, r // 4: 3 * r // 4, r // 4: 3 * r // 4] = 1  # a central hole, 25 % of the image
        return img.to(dev), mask.to(dev)

    def m_enc(b, dev):
        img, mask = inputs(b, dev)
        x = torch.cat([img * (1 - mask), mask], 1) if enc.input_nc == 4 else img * (1 - mask)
        return lambda: s1.encode(x)

    def m_gen(b, dev):
        codes = torch.randn(b, enc.n_styles, enc.style_dim, generator=torch.Generator().manual_seed(0)).to(dev)
        return lambda: s1.decode(codes)

    def m_ifr(b, dev):
        img, mask = inputs(b, dev)
        return lambda: model.ifr(img, mask)

    def m_sfr(b, dev):
        img, mask = inputs(b, dev)
        masked = img * (1 - mask)
        return lambda: model.sfr(masked, img, mask)

    def m_disc(b, dev):
        img, _ = inputs(b, dev)
        return lambda: disc(img)

    def m_all(b, dev):
        img, mask = inputs(b, dev)
        return lambda: model(img, mask)

    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    benches = [
        Bench("pSp encoder", n(enc), m_enc),
        Bench(gen_name, n(gen), m_gen),
        Bench("IFR", n(model.ifr), m_ifr),
        Bench("SFR", n(model.sfr), m_sfr),
        Bench("D1/D2 (each)", n(disc), m_disc),
        Bench("pipeline", n(model), m_all),
    ]
    return desc, benches


def gflops(fn: Callable[[], object]) -> float:
    # no_grad, not inference_mode: spectral-norm parametrizations fail under FlopCounterMode + inference_mode
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        fn()
    return fc.get_total_flops() / 1e9


def target_cell(size: str, module: str, dtype: str, batch: int, min_s: float, device: torch.device) -> str:
    limit = TARGETS.get((size, module))
    if limit is None or dtype != "fp32" or batch != 1 or device.type != "cpu":
        return ""
    return f"<= {limit:g} s: {'pass' if min_s <= limit else 'FAIL'}"


def run(args: argparse.Namespace) -> tuple[str, list[dict], list[str]]:
    device = resolve_device(args.device)
    rows, descs = [], []
    for size in args.sizes:
        desc, benches = build(size, device)
        descs.append(f"{size}: {desc}")
        batches = args.batch or ([1] if size == "paper" else [1, 8])
        repeats = args.repeats or (5 if size == "paper" else 10)
        for bench in benches:
            flops = gflops(bench.make(1, device))
            for dtype in args.dtype:
                for b in batches:
                    fn = bench.make(b, device)
                    def call(fn=fn, dtype=dtype):
                        with torch.inference_mode(), autocast(device, dtype):
                            return fn()
                    times = time_calls(call, device, warmup=1, repeats=repeats, min_repeats=min(3, repeats),
                                       budget_s=args.budget)
                    s = summarize(times)
                    row = {"size": size, "module": bench.name, "params (M)": bench.params / 1e6, "GFLOPs": flops,
                           "dtype": dtype, "batch": b, "threads": torch.get_num_threads(), "runs": s["n"], "min ms": 1e3 * s["min_s"],
                           "median ms": 1e3 * s["median_s"], "img/s": b / s["min_s"],
                           "target": target_cell(size, bench.name, dtype, b, s["min_s"], device)}
                    rows.append(row)
                    print(markdown_table([row], COLUMNS).splitlines()[-1], flush=True)
        del benches
    return str(device), rows, descs


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", choices=SIZES, default=list(SIZES))
    ap.add_argument("--batch", type=int, nargs="+", default=None,
                    help="batch sizes for every size (default: 1 and 8; paper size: 1)")
    ap.add_argument("--dtype", nargs="+", choices=["fp32", "bf16", "fp16"], default=["fp32", "bf16"],
                    help="fp32, or bf16 / fp16 autocast (fp16: CUDA)")
    ap.add_argument("--repeats", type=int, default=None, help="timed runs (default: 10; paper size: 5)")
    ap.add_argument("--budget", type=float, default=8.0,
                    help="stop timing a configuration once its timed runs exceed this many seconds (>= 3 runs)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--note", action="append", default=[], help="a line for the header (repeatable)")
    ap.add_argument("--out", default=None, help="also write the table: NAME.md or NAME.csv (bare names go to "
                                                 "benchmarks/results/)")
    ap.add_argument("--quick", action="store_true", help="smoke size only, batch 1, fp32, 1 timed run")
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.batch, args.dtype, args.repeats = ["smoke"], [1], ["fp32"], 1
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = resolve_device(args.device)
    header = env_header("ISFRNet model benchmark (inference)", device, args.note)
    print(header + "\n", flush=True)
    print("| " + " | ".join(COLUMNS) + " |")
    _, rows, descs = run(args)
    notes = [
        *descs,
        "random weights (psp.checkpoint=None); GFLOPs = FlopCounterMode, forward, batch 1 (2 FLOPs per multiply-add)",
        "latency: torch.inference_mode, 1 warm-up run, min / median of the timed runs; img/s = batch / min",
        "bf16 = torch.autocast(bfloat16); pipeline = encoder + generator (+ pooling) + IFR + SFR with composites",
        "targets (fp32, batch 1, CPU, judged on the min): G 1024 <= 1.5 s, encoder <= 1.0 s, pipeline <= 3.0 s",
        f"load average (1/5/15 min) at end: {loadavg()}",
    ]
    print("\n" + markdown_table(rows, COLUMNS))
    print("\n" + "\n".join(f"- {n}" for n in notes))
    if args.out:
        p = write_out(args.out, header, [("Inference: parameters, GFLOPs, latency", rows, COLUMNS)], notes)
        print(f"\nwrote {p}")


if __name__ == "__main__":
    main()
