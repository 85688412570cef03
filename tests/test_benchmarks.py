"""The benchmark scripts run end to end in ``--quick`` mode and print a Markdown table (no timing checks)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(script: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), "--quick", "--threads", "1", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc.stdout


def _final_table(text: str) -> list[list[str]]:
    """Cells of the rows of the last Markdown table printed (the one under the last |---| line)."""
    lines = text.splitlines()
    start = max(i for i, line in enumerate(lines) if line.startswith("|---"))
    rows = []
    for line in lines[start + 1:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


def test_bench_models_quick(tmp_path):
    out = tmp_path / "models.md"
    text = _run("bench_models.py", "--out", str(out))
    assert "| size | module | params (M) | GFLOPs |" in text
    rows = _final_table(text)
    modules = {r[1] for r in rows if r[0] == "smoke"}
    assert {r[6] for r in rows} == {"1"}  # each row names the thread count its timing ran at (--threads 1)
    assert {"pSp encoder", "StyleGAN2 G", "IFR", "SFR", "D1/D2 (each)", "pipeline"} <= modules
    written = out.read_text()
    assert "torch" in written and "load average" in written and "| smoke | pipeline |" in written


@pytest.mark.parametrize("stage", ["ifr sfr", "psp stylegan"])
def test_bench_train_quick(tmp_path, stage):
    out = tmp_path / "train.csv"
    text = _run("bench_train.py", "--stages", *stage.split(), "--memory-format", "contiguous", "channels_last",
                "--out", str(out))
    assert "| stage | widths | px | batch | amp | memory format | threads |" in text
    rows = _final_table(text)
    # the thread count is read inside the isolated process that timed the steps, not in the parent
    assert len(rows) == 4 and all(r[1] == "smoke" and r[6] == "1" and r[7] != "error" and float(r[8]) > 0
                                  for r in rows)
    assert [r[5] for r in rows] == ["contiguous", "channels_last"] * 2
    assert out.read_text().startswith("table,stage,widths,px,batch,amp,memory format,threads")


def test_bench_sfr_step_quick(tmp_path):
    out = tmp_path / "sfr_step.md"
    text = _run("bench_sfr_step.py", "--preset", "smoke", "--out", str(out))
    rows = _final_table(text)
    parts = [r[0] for r in rows]
    assert parts[0].startswith("SFR train_step") and rows[0][3] == "100%" and "U-Net train_step (L1)" in parts
    assert all(float(r[1]) > 0 for r in rows)
    assert "1 intra-op threads" in out.read_text()



def test_score_shipped_compares_the_same_pairs_per_range():
    import importlib.util

    import pandas as pd

    spec = importlib.util.spec_from_file_location("score_shipped", REPO / "benchmarks" / "score_shipped.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    pairs = [("a.jpg", "1.png", "20-40"), ("b.jpg", "2.png", "20-40"), ("c.jpg", "3.png", "40-60"),
             ("d.jpg", "4.png", "")]
    rows = pd.DataFrame({"name": [p[0] for p in pairs], "mask_name": [p[1] for p in pairs],
                         "paper_range": [p[2] for p in pairs], "psnr": [30.0, 28.0, 22.0, 40.0],
                         "ssim": [0.90, 0.80, 0.70, 0.99]})
    committed = pd.concat([  # the ISFRNet rows 0.01 dB and 0.001 SSIM off, in another order; another method's rows
        rows.iloc[::-1].assign(method="ISFRNet", psnr=[40.0, 22.0, 28.01, 29.99], ssim=[0.99, 0.70, 0.80, 0.899]),
        rows.assign(method="biharmonic", psnr=0.0)])
    table = {(r["metric"], r["range"]): r for r in tool.compare(rows, committed)}
    assert table[("PSNR", "20-40")]["pairs"] == 2 and table[("PSNR", "20-40")]["difference"] == pytest.approx(0.0)
    assert table[("PSNR", "20-40")]["largest pair difference"] == pytest.approx(0.01)
    assert table[("PSNR", "20-40")]["within"] and table[("PSNR", "40-60")]["within"]
    assert table[("SSIM", "20-40")]["difference"] == pytest.approx(0.0005) and table[("SSIM", "20-40")]["within"]
    committed.loc[(committed["method"] == "ISFRNet") & (committed["name"] == "c.jpg"), "psnr"] = 21.9
    assert not {(r["metric"], r["range"]): r for r in tool.compare(rows, committed)}[("PSNR", "40-60")]["within"]
    with pytest.raises(SystemExit, match="no committed ISFRNet row"):
        tool.compare(rows, committed[committed["name"] != "a.jpg"])
