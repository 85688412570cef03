"""Command line: ``isfr reproduce``, ``isfr inpaint``, ``isfr evaluate``, ``isfr train``."""
from __future__ import annotations

import argparse
import sys


def _reproduce(args: argparse.Namespace) -> int:
    from .reproduce import reproduce

    reproduce(preset=args.preset, data_root=args.data_root, only=args.only, seed=args.seed)
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
    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
