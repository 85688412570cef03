"""tools/compare_trainings.py: two trainings' per-image scores, paired on the same (image, mask) pairs."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import load_tool


def _scores(path, psnr, method="ISFRNet", names=None):
    n = len(psnr)
    names = names or [f"{i}.jpg" for i in range(n)]
    pd.DataFrame({"method": method, "name": names, "mask_name": "m.png", "bucket": "20-30", "paper_range": "20-40",
                  "psnr": psnr, "ssim": 0.9, "source": "s"}).to_csv(path, index=False)
    return path


def test_the_retrain_minus_the_first_training_pair_by_pair(tmp_path):
    tool = load_tool("compare_trainings")
    rng = np.random.default_rng(0)
    base = rng.normal(27.0, 2.0, 200)
    old = _scores(tmp_path / "old.csv", base)
    new = _scores(tmp_path / "new.csv", base + 0.25)  # every pair 0.25 dB better: the CI collapses onto it
    t = tool.paired(old, new, "ISFRNet", "first training", "retrain")
    row = t[t["group"] == "20-40"].iloc[0]
    assert row["ours"] == "retrain" and row["baseline"] == "first training" and row["n"] == 200
    assert row["psnr diff"] == pytest.approx(0.25) and row["psnr diff_lo"] == pytest.approx(0.25)
    tool.main([str(old), str(new), "--out", str(tmp_path / "cmp")])
    assert "retrain - first training" in (tmp_path / "cmp.md").read_text()
    other = _scores(tmp_path / "other.csv", base, names=[f"x{i}.jpg" for i in range(200)])
    with pytest.raises(ValueError, match="same pairs"):
        tool.paired(old, other, "ISFRNet", "a", "b")
