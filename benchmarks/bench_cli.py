"""Start-up time of the command line: wall time of ``isfr --help`` (and, for scale, ``isfr inpaint --help``
and a bare ``import torch``).

Usage: ``python benchmarks/bench_cli.py [--repeats N] [--out cli.md]``.

Each command runs ``--repeats`` times (default 5) as a fresh process after one untimed warm-up run
(disk cache); the table gives the minimum and the median wall time (``common.py``'s timing rule).
``isfr --help`` must not import torch (``isfr/apps/cli.py`` lists the preset names itself); the
"imports torch" column checks that for each command.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import env_header, markdown_table, summarize, write_out  # noqa: E402

from isfr.core.paths import shown_path  # noqa: E402

COLUMNS = ["command", "imports torch", "runs", "min s", "median s"]
_CHECK = ("import sys\nfrom isfr.apps import cli\ntry:\n    cli.main({argv!r})\nexcept SystemExit:\n    pass\n"
          "print('torch' in sys.modules)")


def _isfr() -> list[str]:
    """The ``isfr`` console script beside this Python, else ``python -m isfr.apps.cli``."""
    exe = Path(sys.executable).with_name("isfr")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("isfr")
    return [found] if found else [sys.executable, "-m", "isfr.apps.cli"]


def _wall(cmd: list[str], repeats: int) -> list[float]:
    subprocess.run(cmd, capture_output=True, check=True)  # warm-up: disk cache
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return times


def _imports_torch(argv: list[str]) -> bool:
    out = subprocess.run([sys.executable, "-c", _CHECK.format(argv=argv)], capture_output=True, text=True, check=True)
    return out.stdout.strip().endswith("True")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per command (default: 5)")
    ap.add_argument("--note", action="append", default=[], help="a line for the header (repeatable)")
    ap.add_argument("--out", default="cli.md", help="NAME.md or NAME.csv (bare names go to benchmarks/results/)")
    args = ap.parse_args(argv)
    isfr = _isfr()
    rows = []
    for label, cmd, torch_check in (
        ("isfr --help", isfr + ["--help"], ["--help"]),
        ("isfr inpaint --help", isfr + ["inpaint", "--help"], ["inpaint", "--help"]),
        ("python -c 'import torch' (reference)", [sys.executable, "-c", "import torch"], None),
    ):
        s = summarize(_wall(cmd, args.repeats))
        rows.append({"command": label, "imports torch": True if torch_check is None else _imports_torch(torch_check),
                     "runs": s["n"], "min s": s["min_s"], "median s": s["median_s"]})
        print(markdown_table(rows[-1:], COLUMNS).splitlines()[-1], flush=True)
    header = env_header("isfr command-line start-up", torch.device("cpu"),
                        [f"command: {' '.join(shown_path(c) for c in isfr)}",
                         f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}",
                         *args.note])
    print("\n" + markdown_table(rows, COLUMNS))
    p = write_out(args.out, header, [("Wall time of a fresh process", rows, COLUMNS)],
                  ["`isfr --help` and `isfr inpaint --help` import no torch (preset names are listed in isfr/apps/cli.py; "
                   "tests/test_inpaint_inputs.py checks them against isfr.experiments.config.PRESETS)."])
    print(f"\nwrote {p}")


if __name__ == "__main__":
    main()
