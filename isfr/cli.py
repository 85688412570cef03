"""Command line: ``isfr reproduce``, ``isfr train``, ``isfr export``, ``isfr ladder``, ``isfr inpaint``, ``isfr evaluate``."""
from __future__ import annotations

import argparse
import sys

#: ``isfr.config.PRESETS``, written out so that ``isfr --help`` does not import torch (a test checks they agree).
PRESETS: tuple[str, ...] = ("smoke", "small", "paper")


def _reproduce(args: argparse.Namespace) -> int:
    from .reproduce import reproduce

    from .config import parse_overrides

    reproduce(preset=args.preset, data_root=args.data_root, only=args.only, seed=args.seed,
              overrides=parse_overrides(args.set), train_ladder=args.train_ladder or None)
    return 0


def _train(args: argparse.Namespace) -> int:
    from .config import get_preset, parse_overrides
    from .training.pipeline import train_all

    preset = get_preset(args.preset, seed=args.seed, **parse_overrides(args.set))
    kw = {"time_budget_s": args.time_budget_min * 60} if args.time_budget_min else {}
    results = train_all(preset, args.variants, args.data_root, main=not args.ablations_only,
                        main_only=args.main_only, progress=not args.no_progress, **kw)
    for name, r in results:
        print(f"{name}: " + ("nothing to train (pretrained stage 1, or no U-Net in this preset)" if r is None
                             else f"{r.step}/{r.total_steps} steps, {r.stop_reason}"), flush=True)
    if args.ablations_only or not all(r is None or r.finished for _, r in results):
        return 0
    return _export(args)


def _export(args: argparse.Namespace) -> int:
    from .config import get_preset, parse_overrides
    from .trained import export_pipeline

    preset = get_preset(args.preset, seed=args.seed, **parse_overrides(args.set))
    try:
        path = export_pipeline(preset, "full", getattr(args, "output", None), data_root=args.data_root)
    except FileNotFoundError as err:
        print(f"isfr export: error: {err}", file=sys.stderr)
        return 1
    print(f"exported the full model: {path}")
    return 0


def _ladder(args: argparse.Namespace) -> int:
    from .ladder import ladder_preset, run_ladder, write_ladder

    if args.table_only:
        table = write_ladder(ladder_preset(args.data_root, args.preset), steps=args.steps)
    else:
        table = run_ladder(ladder_preset(args.data_root, args.preset), args.rungs, args.steps, not args.no_progress)
    print(f"{len(table)} rung(s) in figures/{args.preset}/ladder.md")
    return 0


def _dryrun(args: argparse.Namespace) -> int:
    from .dryrun import dryrun

    path = dryrun(args.preset, args.data_root, args.preprocess, cut_down=args.cut_down, out=args.out, keep=args.keep)
    print(f"[isfr dryrun] table written to {path}")
    return 0


def _inpaint(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .inpaint import checkpoint_info, error_line, inpaint_file, inpaint_folder, load_model, warn_if_undertrained

    def model():  # loaded once the inputs are checked
        warn_if_undertrained(args.checkpoint, info)
        return load_model(args.checkpoint, args.device)

    try:
        info = checkpoint_info(args.checkpoint)  # cheap: a missing or broken file is reported first
        if Path(args.image).is_dir():
            outs = inpaint_folder(args.image, args.mask, model, args.output, align=not args.no_align,
                                  overwrite=args.overwrite, progress=not args.no_progress)
            print(f"wrote {len(outs)} image(s) to {args.output}")
        else:
            out = inpaint_file(args.image, args.mask, model, args.output, align=not args.no_align,
                               overwrite=args.overwrite)
            print(f"wrote {out}")
    except (OSError, ValueError) as err:
        print(f"isfr inpaint: error: {error_line(err)}", file=sys.stderr)
        return 1
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from .inpaint import error_line, evaluate_checkpoint, summary_table, warn_if_undertrained

    try:
        warn_if_undertrained(args.checkpoint)
        _, summary = evaluate_checkpoint(
            args.checkpoint, args.data_root, args.split, limit=args.limit, preset=args.preset, csv_path=args.csv,
            learned_metrics=not args.basic_metrics, batch_size=args.batch_size, device=args.device,
            progress=not args.no_progress)
    except (OSError, ValueError) as err:
        print(f"isfr evaluate: error: {error_line(err)}", file=sys.stderr)
        return 1
    print(summary_table(summary))
    if args.csv:
        print(f"per-image rows: {args.csv}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="isfr", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("reproduce", help="run notebooks 01..06 with papermill at a preset")
    r.add_argument("--preset", default="smoke", choices=PRESETS)
    r.add_argument("--data-root", default=None, help="dataset folder (default: $ISFR_DATA_ROOT, else synthetic faces)")
    r.add_argument("--only", nargs="*", default=None, help="notebook prefixes to run, e.g. 01 03")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--set", action="append", metavar="FIELD=VALUE", help="override a preset field, e.g. data.preprocess=ffhq")
    r.add_argument("--train-ladder", action="store_true",
                   help="notebook 08 trains the ladder rungs not yet run (default: only at the smoke preset)")
    r.set_defaults(func=_reproduce)
    t = sub.add_parser("train", help="train every stage and Table 1 variant of a preset (resumable)")
    t.add_argument("--preset", default="smoke", choices=PRESETS)
    t.add_argument("--data-root", default=None, help="dataset folder (default: $ISFR_DATA_ROOT, else synthetic faces)")
    t.add_argument("--variants", nargs="*", default=None, help="Table 1 variants (default: all, see isfr.runs.VARIANTS)")
    t.add_argument("--time-budget-min", type=float, default=0, help="stop each run after this long (resume later)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--set", action="append", metavar="FIELD=VALUE", help="override a preset field, e.g. sfr.weighting=none")
    t.add_argument("--ablations-only", action="store_true",
                   help="skip the main model: run the Table 1 variants beside a main-model process (one per core)")
    t.add_argument("--main-only", action="store_true",
                   help="train stages 1-3 of the main model, export it, and nothing else (no U-Net, no Table 1 rows)")
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(func=_train)
    x = sub.add_parser("export", help="write a trained preset's full model to one file for `isfr inpaint`")
    x.add_argument("--preset", default="smoke", choices=PRESETS)
    x.add_argument("--data-root", default=None, help="the data it was trained on (default: $ISFR_DATA_ROOT, else synthetic)")
    x.add_argument("--seed", type=int, default=0)
    x.add_argument("--set", action="append", metavar="FIELD=VALUE", help="the overrides it was trained with")
    x.add_argument("-o", "--output", default=None, help="file to write (default: runs/<preset>/<data>/isfrnet_full<key>.pt)")
    x.set_defaults(func=_export)
    lad = sub.add_parser("ladder", help="the equal-compute ladder from a plain U-Net to ISFRNet (small preset, resumable)")
    lad.add_argument("--rungs", nargs="*", default=None, help="rungs to train and score (default: all, see isfr.ladder)")
    lad.add_argument("--data-root", default=None, help="dataset folder (default: $ISFR_DATA_ROOT, else synthetic faces)")
    lad.add_argument("--table-only", action="store_true", help="only rewrite figures/<preset>/ladder.* from finished rungs")
    lad.add_argument("--preset", default="small", choices=("small", "smoke"), help="smoke: checks the code only")
    lad.add_argument("--steps", type=int, default=None, help="steps of every rung (smoke only; default: the ladder's)")
    lad.add_argument("--no-progress", action="store_true")
    lad.set_defaults(func=_ladder)
    d = sub.add_parser("dryrun", help="the paper preset end to end on the CPU with stand-in weights (3 steps a stage)")
    d.add_argument("--preset", default="paper", choices=PRESETS)
    d.add_argument("--data-root", default=None, help="dataset folder (default: $ISFR_DATA_ROOT, else synthetic faces)")
    d.add_argument("--preprocess", default=None, choices=("center_crop", "ffhq"), help="data.preprocess (default: the preset's)")
    d.add_argument("--cut-down", action="store_true", help="CI: the full model only, notebooks 01, 04, 06")
    d.add_argument("--out", default=None, help="table file (default: benchmarks/results/dryrun_<preset>[_<preprocess>].md)")
    d.add_argument("--keep", action="store_true", help="keep the temporary folder (stand-ins, runs, figures, logs)")
    d.set_defaults(func=_dryrun)

    i = sub.add_parser("inpaint", help="fill the holes of a photo (or a folder of photos) with a trained ISFRNet")
    i.add_argument("image", help="photo, or a folder of photos")
    i.add_argument("--mask", required=True,
                   help="mask in the photo's frame, or a folder of masks named like the photos: white = hole, "
                        "grey values >= 128 count as hole (anti-aliased or blurred edges are cut at 128); "
                        "a mask whose maximum is 1 is read as 0/1, 1 = hole")
    i.add_argument("--checkpoint", required=True,
                   help="pipeline file written by `isfr train` / `isfr export`, e.g. runs/small/<data>/isfrnet_full.pt")
    i.add_argument("-o", "--output", required=True,
                   help="output image, in an existing folder (folder mode: output folder, created if missing, "
                        "with <stem>.png)")
    i.add_argument("--no-align", action="store_true",
                   help="the photo is already an aligned face: center-crop + resize (output at the model's size)")
    i.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    i.add_argument("--device", default=None, help="cpu / cuda (default: cuda when available)")
    i.add_argument("--no-progress", action="store_true")
    i.set_defaults(func=_inpaint)
    e = sub.add_parser("evaluate", help="score a checkpoint per hole-ratio bucket on a data split")
    e.add_argument("--checkpoint", required=True,
                   help="pipeline file written by `isfr train` / `isfr export`, e.g. runs/small/<data>/isfrnet_full.pt")
    e.add_argument("--data-root", default=None, help="dataset folder (default: $ISFR_DATA_ROOT, else synthetic faces)")
    e.add_argument("--split", default="test", choices=["test", "val"])
    e.add_argument("--limit", type=int, default=None, help="first N images of the split (x 6 buckets = pairs)")
    e.add_argument("--preset", default=None, choices=PRESETS,
                   help="data options (protocol, seed); default: the preset recorded in the checkpoint")
    e.add_argument("--csv", default=None, help="write per-image rows to this CSV")
    e.add_argument("--basic-metrics", action="store_true", help="PSNR / SSIM / L1 only (skip LPIPS and identity)")
    e.add_argument("--batch-size", type=int, default=8)
    e.add_argument("--device", default=None, help="cpu / cuda (default: cuda when available)")
    e.add_argument("--no-progress", action="store_true")
    e.set_defaults(func=_evaluate)
    args = p.parse_args(argv)
    from .utils import one_line_warnings, thread_policy  # after parsing: `isfr --help` imports no torch

    one_line_warnings()
    thread_policy()
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
