"""tools/compare_logs.py: the first logged step where two trainings differ, and how far they drift."""
from __future__ import annotations

from pathlib import Path

from conftest import load_tool

HEADER = "step,epoch,time,elapsed_s,lr_g,lr_d,adv,loss,rec\n"


def write(folder: Path, rows: list[str]) -> Path:
    (folder / "ifr").mkdir(parents=True)
    (folder / "ifr" / "train_log.csv").write_text(HEADER + "".join(rows))
    return folder


def test_it_names_the_first_differing_step_and_ignores_the_clock(tmp_path):
    tool = load_tool("compare_logs")
    old = write(tmp_path / "old", ["25,0.1,t0,30.0,1e-4,1e-4,0.5,2.0,0.1\n", "50,0.2,t1,60.0,1e-4,1e-4,0.5,1.0,0.1\n",
                                   "75,0.3,t2,90.0,1e-4,1e-4,0.5,1.0,0.1\n"])
    new = write(tmp_path / "new", ["25,0.1,u0,10.0,1e-4,1e-4,0.5,2.0,0.1\n", "50,0.2,u1,20.0,1e-4,1e-4,0.5,1.1,0.1\n",
                                   "75,0.3,u2,30.0,1e-4,1e-4,0.5,1.0,0.1\n"])
    r = tool.compare_stage(new / "ifr", old / "ifr")
    assert r["rows"] == 3 and r["first_differs"] == 50 and r["first_cols"] == "loss"
    assert abs(r["first_rel"] - 0.1) < 1e-9 and r["same_lr"]
    text = tool.report(new, old, ["ifr", "sfr"])
    assert "| ifr | 3 (to step 75) | 50 | 1.0e-01 (loss) |" in text and "| sfr | not in both |" in text
    for folder, scores in ((old, "25.0\n22.0"), (new, "24.0\n26.0")):
        (folder / "ifr" / "val_log.csv").write_text(f"step,is_best,val_score\n25,1,{scores.splitlines()[0]}\n"
                                                    f"75,0,{scores.splitlines()[1]}\n")
    assert tool.compare_stage(new / "ifr", old / "ifr")["val_best"] == (26.0, 75, 25.0, 25)
    same = tool.compare_stage(old / "ifr", old / "ifr")
    assert same["first_differs"] is None and same["max_window_drift"] == 0.0


def test_the_plot_draws_both_trainings_per_stage(tmp_path):
    from PIL import Image

    tool = load_tool("compare_logs")
    rows = [f"{s},0.1,t,{s}.0,1e-4,1e-4,0.5,{2.0 - s / 1000},0.1\n" for s in range(25, 1025, 25)]
    old, new = write(tmp_path / "old", rows), write(tmp_path / "new", rows)
    (new / "ifr" / "val_log.csv").write_text("step,is_best,val_score\n500,1,24.0\n1000,1,25.0\n")
    path = tool.plot(new, old, ["ifr", "sfr"], ("2026-12-06", "2026-12-04"), tmp_path / "p.png")
    with Image.open(path) as im:
        assert im.size[1] > im.size[0] > 100  # one column (sfr is in neither folder): taller than wide
    import matplotlib.pyplot as plt

    assert not plt.get_fignums(), "the figure was left open"
