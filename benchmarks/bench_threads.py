"""How many torch threads a process should use on the CPU it runs on: 1 vs 2, alone and beside a busy process.

Usage: ``python benchmarks/bench_threads.py [--steps 8] [--out threads_cpu.md]``. Times a training step of
the ``small`` preset's learned U-Net (64 px, batch 16, bf16 autocast; the ladder's base rung) in a fresh
process per configuration, with the machine otherwise idle or with one extra process spinning on a core
(what another training run does). Run it with nothing else running: the table is the evidence behind
``isfr.core.utils.thread_policy``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import env_header, markdown_table, write_out  # noqa: E402

COLUMNS = ("threads", "other process", "steps", "min s/step", "median s/step", "vs 1 thread alone")


def _spin(stop) -> None:  # pragma: no cover - a busy core
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def _step_times(threads: int, steps: int, queue) -> None:
    import torch

    from isfr.experiments.config import get_preset
    from isfr.models.unet import UNet

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    P = get_preset("small")
    net = UNet(P.unet)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    x, m = torch.randn(16, 3, 64, 64), (torch.rand(16, 1, 64, 64) > 0.7).float()
    times = []
    for i in range(steps + 2):  # 2 warm-up steps
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = (net(x * (1 - m), m).float() - x).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    queue.put(times)


def measure(threads: int, busy: bool, steps: int) -> list[float]:
    ctx = mp.get_context("spawn")
    stop, queue = ctx.Event(), ctx.Queue()
    spinner = ctx.Process(target=_spin, args=(stop,)) if busy else None
    if spinner:
        spinner.start()
    try:
        p = ctx.Process(target=_step_times, args=(threads, steps, queue))
        p.start()
        times = queue.get(timeout=600)
        p.join()
    finally:
        stop.set()
        if spinner:
            spinner.join(10)
    return times


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--out", default="threads_cpu.md")
    args = ap.parse_args(argv)
    load = os.getloadavg()
    rows = []
    for busy in (False, True):
        for threads in (1, 2):
            t = measure(threads, busy, args.steps)
            rows.append({"threads": threads, "other process": "busy" if busy else "none", "steps": len(t),
                         "min s/step": min(t), "median s/step": statistics.median(t)})
            print(rows[-1], flush=True)
    ref = rows[0]["median s/step"]
    for r in rows:
        r["vs 1 thread alone"] = f"x{r['median s/step'] / ref:.2f}"
    import torch

    header = env_header("Torch threads per process: 1 vs 2, alone and beside a busy process", torch.device("cpu"),
                        [f"load average before the run: {' / '.join(f'{x:.2f}' for x in load)}",
                         "small-preset U-Net training step (64 px, batch 16, bf16 autocast), a fresh process each"])
    notes = ["other process = one extra process spinning on a core (as another training run does)",
             f"load average at end: {' / '.join(f'{x:.2f}' for x in os.getloadavg())}"]
    print(header + "\n\n" + markdown_table(rows, COLUMNS) + "\n\n" + "\n".join(f"- {n}" for n in notes))
    print(f"\nwrote {write_out(args.out, header, [('Seconds per step', rows, COLUMNS)], notes)}")


if __name__ == "__main__":
    main()
