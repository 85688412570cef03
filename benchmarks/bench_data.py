"""Data-loading throughput: CelebA train images paired with NVIDIA masks through a DataLoader.

Usage: ``python benchmarks/bench_data.py [--root DIR] [--workers 2] [--batch 16] [--res 64 128 256]``.
Needs real data (``--root`` or ``ISFR_DATA_ROOT``, default ``../shared/data`` beside the repo).
The one-off NVIDIA mask cache build per resolution is timed separately (``mask cache s``); the
cache goes to ``--cache`` (default: a temporary folder, so the build is measured every run).
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from isfr.data import NvidiaMasks, build_dataset, resolve_data_root


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
    return dict(res=resolution, pairs=n, seconds=dt, pairs_per_s=n / dt, cpu_ms=1e3 * cpu / n, cache_s=cache_s)


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and its joined children (the loader workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_root = os.environ.get("ISFR_DATA_ROOT") or str(Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--root", default=default_root)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--res", type=int, nargs="+", default=[64, 128, 256])
    ap.add_argument("--cache", default=None)
    ap.add_argument("--limit", type=int, default=None, help="images (default: all 4,560 train images)")
    args = ap.parse_args()
    if resolve_data_root(args.root).kind != "celeba":
        raise SystemExit(f"{args.root}: needs the CelebA subset and NVIDIA masks (set --root or ISFR_DATA_ROOT)")
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.cache or tmp
        rows = [bench(args.root, r, args.workers, args.batch, cache, args.limit) for r in args.res]
    load = os.getloadavg()[0]
    print(f"\nDataLoader: {args.workers} workers, batch {args.batch}; {os.cpu_count()} CPUs, load average {load:.1f}")
    print("CPU ms/pair counts main process + workers; on idle cores pairs/s ~ 1000 * cores / (CPU ms/pair)")
    print(f"{'res':>5} {'pairs':>6} {'seconds':>8} {'pairs/s':>8} {'CPU ms/pair':>12} {'mask cache s':>13}")
    for r in rows:
        print(f"{r['res']:>5} {r['pairs']:>6} {r['seconds']:>8.2f} {r['pairs_per_s']:>8.0f} "
              f"{r['cpu_ms']:>12.2f} {r['cache_s']:>13.1f}")


if __name__ == "__main__":
    main()
