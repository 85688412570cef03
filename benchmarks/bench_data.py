"""Data-loading throughput: CelebA train images paired with NVIDIA masks through a DataLoader.

Usage: ``python benchmarks/bench_data.py [--root DIR] [--workers 2] [--batch 16] [--res 64 128 256]
[--out data_cpu.md]``; the table goes to ``benchmarks/results/`` like the other benchmarks' tables.
Needs real data (``--root`` or ``ISFR_DATA_ROOT``, default ``../shared/data`` beside the repo).
The one-off NVIDIA mask cache build per resolution is timed separately (``mask cache s``); the
cache goes to ``--cache`` (default: a temporary folder, so the build is measured every run).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import env_header, markdown_table, write_out  # noqa: E402

from isfr.data import NvidiaMasks, build_dataset, resolve_data_root  # noqa: E402

COLUMNS = ("res", "pairs", "seconds", "pairs/s", "CPU ms/pair", "mask cache s")


def bench(root: str, resolution: int, workers: int, batch: int, cache: str, limit: int | None) -> dict:
    t0 = time.perf_counter()
    NvidiaMasks(resolve_data_root(root).masks, resolution, cache)
    cache_s = time.perf_counter() - t0
    ds = build_dataset(root, "train", resolution, cache=cache, limit=limit)
    loader = DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers,
                        generator=torch.Generator().manual_seed(0))
    it = iter(loader)
    next(it)  # worker start-up and first batch are not counted
    n, t0, cpu0 = 0, time.perf_counter(), _cpu_seconds()
    for b in it:
        n += b["image"].shape[0]
    dt = time.perf_counter() - t0
    del it  # joins the workers so that their CPU time is counted
    cpu = _cpu_seconds() - cpu0
    return {"res": resolution, "pairs": n, "seconds": dt, "pairs/s": n / dt, "CPU ms/pair": 1e3 * cpu / n,
            "mask cache s": cache_s}


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and its joined children (the loader workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=os.environ.get("ISFR_DATA_ROOT"),
                    help="the data root: CelebA and the NVIDIA masks (default: $ISFR_DATA_ROOT)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--res", type=int, nargs="+", default=[64, 128, 256])
    ap.add_argument("--cache", default=None)
    ap.add_argument("--limit", type=int, default=None, help="images (default: all 4,560 train images)")
    ap.add_argument("--out", default="data_cpu.md", help="table file (bare names go to benchmarks/results/)")
    args = ap.parse_args()
    if not args.root:
        raise SystemExit("no data root: pass --root or set ISFR_DATA_ROOT to the folder holding celeba/ and "
                         "nvidia_irregular_masks/")
    if resolve_data_root(args.root).kind != "celeba":
        raise SystemExit(f"{args.root}: needs the CelebA subset and NVIDIA masks (set --root or ISFR_DATA_ROOT)")
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache or tmp
        rows = [bench(args.root, r, args.workers, args.batch, cache, args.limit) for r in args.res]
    header = env_header("Data loading: CelebA train images + NVIDIA masks through a DataLoader", torch.device("cpu"),
                        [f"{args.workers} workers, batch {args.batch}, {rows[0]['pairs']} pairs per resolution"])
    notes = ["CPU ms/pair counts the main process and the workers; on idle cores pairs/s ~ 1000 * cores / (CPU ms/pair)",
             "mask cache s: the one-off NVIDIA mask cache build at that resolution (decode + resize + bit-pack)",
             f"load average (1/5/15 min) at end: {' / '.join(f'{x:.2f}' for x in os.getloadavg())}"]
    print(header + "\n\n" + markdown_table(rows, COLUMNS) + "\n\n" + "\n".join(f"- {n}" for n in notes))
    print(f"\nwrote {write_out(args.out, header, [('Data loading', rows, COLUMNS)], notes)}")


if __name__ == "__main__":
    main()
