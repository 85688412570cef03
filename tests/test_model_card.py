"""tools/model_card.py: the shipped model's card, written from the file and the committed records."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest
import torch

from conftest import load_tool, shipped_file

REPO = Path(__file__).resolve().parents[1]
FIG = REPO / "figures" / "small"


@pytest.fixture(scope="module")
def smoke_file(tmp_path_factory) -> Path:
    """An untrained smoke pipeline saved as an export is (fp16, with the metadata the card reads)."""
    from isfr.experiments.config import get_preset
    from isfr.experiments.trained import build_model

    P = get_preset("smoke")
    path = tmp_path_factory.mktemp("w") / "isfrnet_small.pt"
    build_model(P).save(path, stored_dtype=torch.float16, preset="small", variant="full",
                        preset_config={"seed": 0}, steps="StyleGAN2 30 + pSp 20 steps + IFR 20 + SFR 20 steps (batch 4)",
                        data_identity={"tag": "celeba-test", "images": {"train": 10, "val": 2, "test": 3},
                                       "masks": "nvidia (12 files)"},
                        schedule={r: {"step": 20, "total_steps": 20, "finished": True} for r in ("ifr", "sfr")})
    return path


def test_the_card_quotes_the_file_and_the_committed_tables(smoke_file):
    text = load_tool("model_card").render(smoke_file)
    assert hashlib.sha256(smoke_file.read_bytes()).hexdigest() in text
    assert f"{smoke_file.stat().st_size / 1e6:.1f} MB" in text
    final = pd.read_csv(FIG / "final_table.csv").set_index(["model", "split"]).loc[("ISFRNet", "test")]
    d, lo, hi = (final[f"psnr 40-60 {k}"] for k in ("diff", "diff_lo", "diff_hi"))
    assert f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}]" in text
    by_bucket = pd.read_csv(FIG / "metrics_by_bucket.csv", dtype={"bucket": str})
    row = by_bucket[(by_bucket["method"] == "ISFRNet") & (by_bucket["bucket"] == "20-40")].iloc[0]
    assert f"{row['ssim']:.3f} [{row['ssim_lo']:.3f}, {row['ssim_hi']:.3f}]" in text
    assert "28.12 | 23.31 | 0.942 | 0.840" in text  # the paper's Table 2 row for ISFRNet, as printed
    assert "ifr 20 of 20, sfr 20 of 20" in text and "celeba-test" in text
    assert "non-commercial" in text and "CC BY-NC-SA" in text and "isfr evaluate" in text and "--main-only" in text
    assert "](../figures/small/failure_cases.png)" in text


def test_check_fails_on_a_card_that_is_not_what_the_files_give(smoke_file, tmp_path, capsys):
    tool = load_tool("model_card")
    card = tmp_path / "README.md"
    assert tool.main(["--weights", str(smoke_file), "--out", str(card)]) == 0
    assert tool.main(["--weights", str(smoke_file), "--out", str(card), "--check"]) == 0
    card.write_text(card.read_text().replace("CC BY-NC-SA", "CC BY"))
    assert tool.main(["--weights", str(smoke_file), "--out", str(card), "--check"]) == 1
    assert "tools/model_card.py" in capsys.readouterr().err


def test_the_committed_card_is_what_the_committed_files_give():
    shipped_file()
    assert load_tool("model_card").main(["--check"]) == 0
