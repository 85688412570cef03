"""The paper preset's dry run, cut down for CI: every stage crossed at 256 px with stand-in weights, through the
entry points a user runs (`isfr train`, notebooks 01/04/06 by papermill, `isfr inpaint`). Several minutes:
the one long test, by design: the first GPU user must not be the first to run the paper preset."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import namedtuple

import pytest

from isfr.core.paths import REPO_ROOT
from isfr.experiments import dryrun as D


def test_a_disk_without_room_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    """One line naming the folder, the room there and the room needed, and a fix; no temporary folder left."""
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(D.shutil, "disk_usage", lambda folder: usage(10 * 2**30, 9 * 2**30, 2**30))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(D.tempfile, "tempdir", None)  # tempfile reads TMPDIR again
    with pytest.raises(OSError, match=r"has 1.0 GiB free and the dry run needs about 3.5 GiB there") as e:
        D.dryrun("paper", cut_down=True, out=tmp_path / "dryrun.md")
    assert str(tmp_path) in str(e.value) and "TMPDIR" in str(e.value)
    assert not list(tmp_path.glob("isfr-dryrun-*"))


def test_cut_down_dry_run_of_the_paper_preset(tmp_path):
    out = tmp_path / "dryrun.md"
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    free = shutil.disk_usage(scratch).free / 2**30
    if free < D.DISK_GIB["cut_down"]:
        pytest.skip(f"the cut-down dry run needs about {D.DISK_GIB['cut_down']} GiB free under {scratch}; "
                    f"{free:.1f} GiB are")
    figures_before = (REPO_ROOT / "figures" / "paper").exists()
    env = {**os.environ, "TMPDIR": str(scratch)}
    env.pop("ISFR_ALLOW_STANDIN_WEIGHTS", None)  # the dry run sets it for its own processes only
    r = subprocess.run([sys.executable, "-m", "isfr.apps.cli", "dryrun", "--preset", "paper", "--cut-down", "--out", str(out)],
                       env=env, capture_output=True, text=True, timeout=1500)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    table = out.read_text()
    assert "stand-in weights: numbers are meaningless" in table
    for phase in ("stand-in weights", "isfr train", "notebooks", "isfr inpaint"):
        assert f"| {phase} |" in table, phase
    rows = {line.split("|")[1].strip().split("@")[0]: line for line in table.splitlines() if "@" in line}
    assert {"ifr", "sfr", "unet"} <= set(rows), rows  # every trained stage at 256 px has a step time
    assert "compact stand-ins" in table  # 2.6 MB in place of 2 GB
    assert not list(scratch.glob("isfr-dryrun-*"))  # the temporary folder (stand-ins, runs, figures: 2 GB) is gone
    assert (REPO_ROOT / "figures" / "paper").exists() == figures_before  # nothing written to the work tree
