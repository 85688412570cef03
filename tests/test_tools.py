"""Scripts in tools/ that run on real run folders."""
from __future__ import annotations

import pandas as pd
import pytest
from conftest import load_tool as _tool


def test_copy_run_logs_copies_records_never_checkpoints(tmp_path):
    tool = _tool("copy_run_logs")
    runs = tmp_path / "runs"
    (runs / "sfr" / "checkpoints").mkdir(parents=True)
    (runs / "sfr" / "train_log.csv").write_text("step,loss\n25,1.0\n")
    (runs / "sfr" / "config.json").write_text("{}")
    (runs / "sfr" / "checkpoints" / "last.pt").write_bytes(b"weights")
    (runs / "sfr" / ".sfr.lock").write_text("")
    (runs / "ladder").mkdir()  # no train_log.csv: not a run folder
    (runs / "ladder" / "biharmonic_val_scores.csv.gz").write_bytes(b"x")
    log = tmp_path / "main_chain.log"
    log.write_text("warning: resuming\n")
    dest = tmp_path / "out"
    written = tool.copy_run_logs(runs, dest, [log])
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == [
        "main_chain.log", "sfr/config.json", "sfr/train_log.csv"]
    assert len(written) == 3 and (dest / "sfr" / "train_log.csv").read_text() == "step,loss\n25,1.0\n"
    (runs / "sfr" / "train_log.csv").write_text("step,loss\n25,1.0\n50,0.9\n")  # a refresh overwrites
    tool.copy_run_logs(runs, dest)
    assert (dest / "sfr" / "train_log.csv").read_text().endswith("50,0.9\n")
    with pytest.raises(FileNotFoundError, match="no such runs folder"):
        tool.copy_run_logs(tmp_path / "nothing", dest)


def test_copied_records_name_no_machine_path(tmp_path, monkeypatch):
    import json

    tool = _tool("copy_run_logs")
    runs = tmp_path / "runs"
    monkeypatch.setenv("ISFR_RUNS_DIR", str(runs))
    run = runs / "small" / "celeba-1234abcd" / "ifr"
    run.mkdir(parents=True)
    (run / "train_log.csv").write_text("step,loss\n25,1.0\n")
    (run / "done.json").write_text(json.dumps({"step": 3000, "best_checkpoint": str(run / "checkpoints" / "best.pt")}))
    log = tmp_path / "ship.log"
    log.write_text(f"exported the full model: {runs}/small/celeba-1234abcd/isfrnet_full.pt\n")
    dest = tmp_path / "out"
    tool.copy_run_logs(run.parent, dest, [log])
    assert json.loads((dest / "ifr" / "done.json").read_text()) == {
        "step": 3000, "best_checkpoint": "$ISFR_RUNS_DIR/small/celeba-1234abcd/ifr/checkpoints/best.pt"}
    assert (dest / "ship.log").read_text() == (
        "exported the full model: $ISFR_RUNS_DIR/small/celeba-1234abcd/isfrnet_full.pt\n")
    assert str(tmp_path) not in "".join(p.read_text() for p in dest.rglob("*") if p.is_file())


def test_readme_tables_print_the_csv_values_with_their_cis(tmp_path):
    tool = _tool("readme_tables")
    cols = {"method": ["ISFRNet", "LGNet"], "PSNR 20-40 (ours)": [26.583, None], "PSNR 20-40 (ours)_lo": [26.441, None],
            "PSNR 20-40 (ours)_hi": [26.729, None], "L1 20-40 (ours)": [0.0184, None], "L1 20-40 (ours)_lo": [0.018, None],
            "L1 20-40 (ours)_hi": [0.019, None]}
    pd.DataFrame(cols).to_csv(tmp_path / "t2.csv", index=False)
    lines = tool.table2_lines(tmp_path / "t2.csv")
    assert lines[0].startswith("| method | PSNR 20-40 | PSNR 40-60 |")
    ours = next(line for line in lines if line.startswith("| ISFRNet (ours) |")).split(" | ")
    assert ours[1] == "26.58 [26.44, 26.73]" and ours[2] == "" and ours[5] == "0.018"  # L1 without its CI
    assert "| ISFRNet (paper, 256 px) | 28.12 | 23.31 | 0.942 | 0.840 | 0.015 | 0.053 |  |  |" in lines
    assert not any("LGNet" in line for line in lines)  # the paper-only rows of the CSV are not Table 2's README rows

    t1 = {"paper method": ["ISFRNet"], "PSNR 40-60 (ours)": [21.2849], "PSNR 40-60 (ours)_lo": [21.15],
          "PSNR 40-60 (ours)_hi": [21.41], "SSIM 40-60 (ours)": [0.7006], "SSIM 40-60 (ours)_lo": [0.69],
          "SSIM 40-60 (ours)_hi": [0.71]}
    pd.DataFrame(t1).to_csv(tmp_path / "t1.csv", index=False)
    row = tool.table1_lines(tmp_path / "t1.csv")[2].split(" | ")
    assert row[0] == "| ISFRNet" and row[2] == "13.31 (sic; 23.31 in Table 2) / 21.28 [21.15, 21.41]"
    assert row[1] == "28.12 / " and row[4].rstrip(" |") == "0.840 / 0.701"  # SSIM without its CI
