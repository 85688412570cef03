"""Command line: ``isfr reproduce``, ``isfr train``, ``isfr export``, ``isfr ladder``, ``isfr inpaint``, ``isfr evaluate``.

Every argument is checked before any work starts: a bad one is one line on stderr,
``isfr <command>: error: ...``, naming it and the valid choices, and exit code 2. A bad input file
or a failure of the work is one line and exit code 1. ``--debug`` re-raises instead (the traceback).
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from typing import Any

#: ``isfr.experiments.config.PRESETS``, written out so that ``isfr --help`` does not import torch (a test checks they agree).
PRESETS: tuple[str, ...] = ("smoke", "small", "paper")


class UsageError(Exception):
    """A bad command-line argument: printed as one line, exit code 2."""


# ---------------------------------------------------------------- argument checks (before any work)
def _names(given: Iterable[str] | None, valid: Iterable[str], what: str, plural: str | None = None) -> None:
    """A :class:`UsageError` naming every name of ``given`` that is not ``valid``, and the valid ones."""
    valid = list(valid)
    bad = [n for n in given or [] if n not in valid]
    if bad:
        raise UsageError(f"unknown {what} {', '.join(repr(b) for b in bad)}; the {plural or what + 's'} are "
                         f"{', '.join(valid)}")


def variant_names() -> list[str]:
    """The names of ``isfr.experiments.runs.VARIANTS``, read from the source of
    ``isfr/experiments/runs.py`` without importing it: the
    import (torch, torchvision, scipy) takes seconds, and a misspelt variant is refused before it (a test holds
    the two to each other). The import is the fallback when the source does not read as expected."""
    import ast
    from pathlib import Path

    tree = ast.parse((Path(__file__).parents[1] / "experiments" / "runs.py").read_text(encoding="utf-8"))
    value = next((n.value for n in tree.body if isinstance(n, ast.Assign)
                  and any(getattr(t, "id", None) == "VARIANTS" for t in n.targets)), None)
    if value is None:  # an annotated assignment
        value = next((n.value for n in tree.body if isinstance(n, ast.AnnAssign)
                      and getattr(n.target, "id", None) == "VARIANTS"), None)
    calls = [c for c in ast.walk(value) if isinstance(c, ast.Call)] if value is not None else []
    names = [c.args[0].value for c in calls if getattr(c.func, "id", None) == "Variant" and c.args
             and isinstance(c.args[0], ast.Constant)]
    if not names:
        from isfr.experiments.runs import VARIANTS

        names = list(VARIANTS)
    return names


def _preset(args: argparse.Namespace) -> Any:
    """The preset of ``--preset``, ``--seed`` and ``--set``, every override checked against its field."""
    from isfr.experiments.config import get_preset, parse_overrides

    try:
        return get_preset(args.preset, seed=args.seed, **parse_overrides(args.set))
    except ValueError as err:  # an unknown field, a value its field does not take, FIELD=VALUE misspelt
        raise UsageError(f"--set: {err}") from err


def _data_root(given: str | None) -> str:
    """The kind of data (``celeba``, ``folder``, ``synthetic``) of a data root (``--data-root``, else
    ``$ISFR_DATA_ROOT``); one that is not there is a usage error."""
    import warnings

    from isfr.data.roots import resolve_data_root

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the synthetic-faces warning comes once, from the work itself
        try:
            return resolve_data_root(given).kind
        except FileNotFoundError as err:
            raise UsageError(str(err)) from err


def checkpoint(given: str | None) -> str:
    """The ISFRNet pipeline file ``isfr inpaint`` and ``isfr evaluate`` use: ``--checkpoint``, else the shipped
    ``small`` model (:func:`isfr.models.shipped.shipped_model_path`, its sha256 checked); one line says which."""
    if given:
        return given
    from isfr.core.paths import shown_path
    from isfr.models.shipped import SHIPPED_SHA256, shipped_model_path

    path = shipped_model_path()  # not found / another hash: one line naming the fixes, exit 1
    print(f"model: {shown_path(path)}, the shipped small ISFRNet (sha256 {SHIPPED_SHA256[:12]}...)", flush=True)
    return str(path)


def _at_least(low: float, kind: type = int):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {text}")
        return value
    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


# ---------------------------------------------------------------- commands
def _reproduce(args: argparse.Namespace) -> int:
    from isfr.experiments import reproduce as R
    from isfr.experiments.config import parse_overrides

    _names(args.only, [nb.name[:2] for nb in R.numbered_notebooks()], "notebook prefix", "notebook prefixes")
    _preset(args)
    _data_root(args.data_root)
    R.reproduce(preset=args.preset, data_root=args.data_root, only=args.only, seed=args.seed,
                overrides=parse_overrides(args.set), train_ladder=args.train_ladder or None)
    return 0


def _train_flags(args: argparse.Namespace) -> None:
    if args.main_only and (args.ablations_only or args.variants is not None):
        raise UsageError("--main-only trains the main model alone; it cannot be combined with "
                         + ("--ablations-only" if args.ablations_only else "--variants"))
    _names(args.variants, variant_names(), "variant")


def _train(args: argparse.Namespace) -> int:
    preset = _preset(args)
    _data_root(args.data_root)
    from isfr.experiments.pipeline import train_all

    kw = {"time_budget_s": args.time_budget_min * 60} if args.time_budget_min else {}
    results = train_all(preset, args.variants, args.data_root, main=not args.ablations_only,
                        main_only=args.main_only, progress=not args.no_progress, **kw)
    for name, r in results:
        print(f"{name}: " + ("nothing to train (pretrained stage 1, or no U-Net in this preset)" if r is None
                             else f"{r.step}/{r.total_steps} steps, {r.stop_reason}"), flush=True)
    if args.ablations_only or not all(r is None or r.finished for _, r in results):
        return 0
    return _write_export(args, preset)


def _export(args: argparse.Namespace) -> int:
    preset = _preset(args)
    _data_root(args.data_root)
    return _write_export(args, preset)


def _write_export(args: argparse.Namespace, preset: Any) -> int:
    from isfr.experiments.trained import export_pipeline

    path = export_pipeline(preset, "full", getattr(args, "output", None), data_root=args.data_root)
    print(f"exported the full model: {path}")
    return 0


def _ladder(args: argparse.Namespace) -> int:
    from isfr.experiments.ladder import RUNGS, ladder_preset, run_ladder, write_ladder

    _names(args.rungs, RUNGS, "rung")
    _data_root(args.data_root)
    if args.table_only:
        table = write_ladder(ladder_preset(args.data_root, args.preset), steps=args.steps)
    else:
        table = run_ladder(ladder_preset(args.data_root, args.preset), args.rungs, args.steps, not args.no_progress)
    print(f"{len(table)} rung(s) in figures/{args.preset}/ladder.md")
    return 0


def _dryrun(args: argparse.Namespace) -> int:
    from isfr.experiments.dryrun import dryrun

    _data_root(args.data_root)
    path = dryrun(args.preset, args.data_root, args.preprocess, cut_down=args.cut_down, out=args.out, keep=args.keep)
    print(f"[isfr dryrun] table written to {path}")
    return 0


def _inpaint_flags(args: argparse.Namespace) -> None:
    if args.skip_existing and args.overwrite:
        raise UsageError("--skip-existing keeps the outputs that exist and --overwrite replaces them: give one")


def _inpaint(args: argparse.Namespace) -> int:
    from pathlib import Path

    ckpt = checkpoint(args.checkpoint)
    from isfr.apps.inpaint import checkpoint_info, inpaint_file, inpaint_folder, load_model, warn_if_undertrained

    info = checkpoint_info(ckpt)  # cheap: a missing or broken file is reported first

    def model():  # loaded once the inputs are checked
        warn_if_undertrained(ckpt, info)
        return load_model(ckpt, args.device)

    def say(line: str) -> None:
        print(line, flush=True)

    if Path(args.image).is_dir():
        outs = inpaint_folder(args.image, args.mask, model, args.output, align=not args.no_align,
                              overwrite=args.overwrite, skip_existing=args.skip_existing,
                              progress=not args.no_progress, report=say)
        print(f"wrote {len(outs)} image(s) to {args.output}")
    else:
        if args.skip_existing:
            raise UsageError("--skip-existing is for folder mode (a folder of photos); for one photo, "
                             "leave it out or choose another output name")
        out = inpaint_file(args.image, args.mask, model, args.output, align=not args.no_align,
                           overwrite=args.overwrite, report=say)
        print(f"wrote {out}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    ckpt = checkpoint(args.checkpoint)
    kind = _data_root(args.data_root)
    from isfr.apps.inpaint import checkpoint_info, evaluate_checkpoint, summary_table, warn_if_undertrained

    trained_on = (checkpoint_info(ckpt).get("data_identity") or {}).get("kind")
    if kind == "synthetic" and trained_on not in (None, "synthetic") and args.data_root != "synthetic":
        raise UsageError(f"{ckpt} was trained on {trained_on} data and no data root is set: point --data-root (or "
                         "ISFR_DATA_ROOT) at the folder holding celeba/ and nvidia_irregular_masks/ "
                         "(docs/presets.md), or give --data-root synthetic to score it on synthetic faces anyway")

    warn_if_undertrained(ckpt)
    _, summary = evaluate_checkpoint(
        ckpt, args.data_root, args.split, limit=args.limit, preset=args.preset, csv_path=args.csv,
        learned_metrics=not args.basic_metrics, batch_size=args.batch_size, device=args.device,
        progress=not args.no_progress)
    print(summary_table(summary))
    if args.csv:
        print(f"per-image rows: {args.csv}")
    return 0


# ---------------------------------------------------------------- parser
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="isfr", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("reproduce", help="run the numbered notebooks (01-08) with papermill at a preset")
    r.add_argument("--preset", default="smoke", choices=PRESETS)
    r.add_argument("--data-root", default=None, help="dataset folder (default: $ISFR_DATA_ROOT, else synthetic faces)")
    r.add_argument("--only", nargs="*", default=None, help="notebook prefixes to run, e.g. 01 03 (default: 01-08)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--set", action="append", metavar="FIELD=VALUE", help="override a preset field, e.g. data.preprocess=ffhq")
    r.add_argument("--train-ladder", action="store_true",
                   help="notebook 08 trains the ladder rungs not yet run (default: only at the smoke preset)")
    r.set_defaults(func=_reproduce)
    t = sub.add_parser("train", help="train every stage and Table 1 variant of a preset (resumable)")
    t.add_argument("--preset", default="smoke", choices=PRESETS)
    t.add_argument("--data-root", default=None, help="dataset folder (default: $ISFR_DATA_ROOT, else synthetic faces)")
    t.add_argument("--variants", nargs="*", default=None, help="Table 1 variants (default: all, see isfr.experiments.runs.VARIANTS)")
    t.add_argument("--time-budget-min", type=_at_least(0, float), default=0,
                   help="stop each run after this long (resume later)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--set", action="append", metavar="FIELD=VALUE", help="override a preset field, e.g. sfr.weighting=none")
    t.add_argument("--ablations-only", action="store_true",
                   help="skip the main model: run the Table 1 variants beside a main-model process (one per core)")
    t.add_argument("--main-only", action="store_true",
                   help="train stages 1-3 of the main model, export it, and nothing else (no U-Net, no Table 1 rows; "
                        "not with --ablations-only or --variants)")
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(func=_train, flags=_train_flags)
    x = sub.add_parser("export", help="write a trained preset's full model to one file for `isfr inpaint`")
    x.add_argument("--preset", default="smoke", choices=PRESETS)
    x.add_argument("--data-root", default=None, help="the data it was trained on (default: $ISFR_DATA_ROOT, else synthetic)")
    x.add_argument("--seed", type=int, default=0)
    x.add_argument("--set", action="append", metavar="FIELD=VALUE", help="the overrides it was trained with")
    x.add_argument("-o", "--output", default=None, help="file to write (default: runs/<preset>/<data>/isfrnet_full<key>.pt)")
    x.set_defaults(func=_export)
    lad = sub.add_parser("ladder", help="the equal-compute ladder from a plain U-Net to ISFRNet (small preset, resumable)")
    lad.add_argument("--rungs", nargs="*", default=None, help="rungs to train and score (default: all, see isfr.experiments.ladder)")
    lad.add_argument("--data-root", default=None, help="dataset folder (default: $ISFR_DATA_ROOT, else synthetic faces)")
    lad.add_argument("--table-only", action="store_true", help="only rewrite figures/<preset>/ladder.* from finished rungs")
    lad.add_argument("--preset", default="small", choices=("small", "smoke"), help="smoke: checks the code only")
    lad.add_argument("--steps", type=_at_least(1), default=None,
                     help="steps of every rung (smoke only; default: the ladder's)")
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
    i.add_argument("image", help="photo, or a folder of photos (read in the orientation their EXIF tag gives)")
    i.add_argument("--mask", required=True,
                   help="mask drawn on the photo as an image viewer shows it, or a folder of masks named like the "
                        "photos: white = hole, grey values >= 128 count as hole (anti-aliased or blurred edges are "
                        "cut at 128); a mask whose maximum is 1 is read as 0/1, 1 = hole")
    i.add_argument("--checkpoint", default=None,
                   help="pipeline file written by `isfr train` / `isfr export` (default: the shipped small model, "
                        "weights/isfrnet_small.pt)")
    i.add_argument("-o", "--output", required=True,
                   help="output image, in an existing folder (folder mode: output folder, created if missing, "
                        "with <stem>.png)")
    i.add_argument("--no-align", action="store_true",
                   help="the photo is already an aligned face: center-crop + resize (output at the model's size)")
    i.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    i.add_argument("--skip-existing", action="store_true",
                   help="folder mode: leave the photos whose output exists (a rerun carries on); not with --overwrite")
    i.add_argument("--device", default=None, help="cpu / cuda (default: cuda when available)")
    i.add_argument("--no-progress", action="store_true")
    i.set_defaults(func=_inpaint, flags=_inpaint_flags)
    e = sub.add_parser("evaluate", help="score a checkpoint per hole-ratio bucket on a data split")
    e.add_argument("--checkpoint", default=None,
                   help="pipeline file written by `isfr train` / `isfr export` (default: the shipped small model, "
                        "weights/isfrnet_small.pt)")
    e.add_argument("--data-root", default=None, help="dataset folder (default: $ISFR_DATA_ROOT, else synthetic faces)")
    e.add_argument("--split", default="test", choices=["test", "val"])
    e.add_argument("--limit", type=_at_least(1), default=None, help="first N images of the split (x 6 buckets = pairs)")
    e.add_argument("--preset", default=None, choices=PRESETS,
                   help="data options (protocol, seed); default: the preset recorded in the checkpoint")
    e.add_argument("--csv", default=None, help="write per-image rows to this CSV")
    e.add_argument("--basic-metrics", action="store_true", help="PSNR / SSIM / L1 only (skip LPIPS and identity)")
    e.add_argument("--batch-size", type=_at_least(1), default=8)
    e.add_argument("--device", default=None, help="cpu / cuda (default: cuda when available)")
    e.add_argument("--no-progress", action="store_true")
    e.set_defaults(func=_evaluate)
    for command in sub.choices.values():
        command.add_argument("--debug", action="store_true",
                             help="on an error, show the Python traceback instead of the one-line message")
    return p


def _run(args: argparse.Namespace) -> int:
    if flags := getattr(args, "flags", None):
        flags(args)  # the checks that need no torch: a misspelt name is refused at once
    from isfr.core.utils import each_warning_once, one_line_warnings, thread_policy  # after parsing: no torch for --help

    one_line_warnings()
    thread_policy()
    with each_warning_once():
        return args.func(args)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except UsageError as err:
        if args.debug:
            raise
        print(f"isfr {args.command}: error: {err}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as err:  # a bad file, setting or data: one line (per failed photo in folder mode)
        if args.debug:
            raise
        from isfr.core.utils import error_lines

        for line in error_lines(err, f"isfr {args.command}: error: "):
            print(line, file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
