"""Command line: ``isfr reproduce``, ``isfr inpaint``, ``isfr evaluate``, ``isfr train``."""
from __future__ import annotations

import argparse
import sys


def _reproduce(args: argparse.Namespace) -> int:
    from .reproduce import reproduce

    reproduce(preset=args.preset, data_root=args.data_root, only=args.only, seed=args.seed)
    return 0


def _train(args: argparse.Namespace) -> int:
    from .config import get_preset
    from .training.pipeline import train_all

    preset = get_preset(args.preset, seed=args.seed)
    kw = {"time_budget_s": args.time_budget_min * 60} if args.time_budget_min else {}
    for name, r in train_all(preset, args.variants, args.data_root, progress=not args.no_progress, **kw):
        print(f"{name}: " + ("skipped (pretrained)" if r is None else f"{r.step}/{r.total_steps} steps, {r.stop_reason}"),
              flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="isfr", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("reproduce", help="run notebooks 01..06 with papermill at a preset")
    r.add_argument("--preset", default="smoke", choices=["smoke", "small", "paper"])
    r.add_argument("--data-root", default=None, help="dataset folder (default: $ISFR_DATA_ROOT, else synthetic faces)")
    r.add_argument("--only", nargs="*", default=None, help="notebook prefixes to run, e.g. 01 03")
    r.add_argument("--seed", type=int, default=0)
    r.set_defaults(func=_reproduce)
    t = sub.add_parser("train", help="train every stage and Table 1 variant of a preset (resumable)")
    t.add_argument("--preset", default="smoke", choices=["smoke", "small", "paper"])
    t.add_argument("--data-root", default=None, help="dataset folder (default: $ISFR_DATA_ROOT, else synthetic faces)")
    t.add_argument("--variants", nargs="*", default=None, help="Table 1 variants (default: all, see isfr.training.pipeline)")
    t.add_argument("--time-budget-min", type=float, default=0, help="stop each run after this long (resume later)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(func=_train)
    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
