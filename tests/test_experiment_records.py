"""Records of runs whose folders are gone: the committed copies under figures/<preset>/training_logs/ stand in for
them (isfr.experiments.runs.record_dir), and the learned U-Net's per-image scores are reused from the committed
file for exactly the same pairs (isfr.experiments.experiment.unet_scores)."""
from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from isfr.experiments.config import get_preset
from isfr.experiments.experiment import unet_scores
from isfr.experiments.runs import UNET_ROW, kept_step, record_dir, run_dir


def test_a_run_folder_that_is_gone_is_read_from_its_committed_records(tmp_path, monkeypatch):
    monkeypatch.setenv("ISFR_RUNS_DIR", str(tmp_path))
    P = get_preset("small")
    assert record_dir(P, "unet").parts[-4:] == ("figures", "small", "training_logs", "unet")
    assert kept_step(P, "unet", committed=True) == 38500  # the U-Net's val-best step, as docs/results.md says
    assert kept_step(P, "unet") is None  # by default only a run folder counts: nothing trained here yet
    assert record_dir(P, "no_such_run") == run_dir(P, "no_such_run")  # nothing committed: the run folder
    (run_dir(P, "unet")).mkdir(parents=True)
    (run_dir(P, "unet") / "done.json").write_text('{"step": 5, "best": {"step": 4}, "best_checkpoint": "x"}')
    assert record_dir(P, "unet") == run_dir(P, "unet") and kept_step(P, "unet", committed=True) == 4  # a run folder wins


def _dataset(pairs):
    return SimpleNamespace(manifest=pd.DataFrame(pairs, columns=["image", "mask"]))


def test_the_unet_scores_are_reused_pair_for_pair_when_its_checkpoint_is_gone(tmp_path, monkeypatch):
    monkeypatch.setenv("ISFR_RUNS_DIR", str(tmp_path / "runs"))
    committed = tmp_path / "comparison_per_image.csv.gz"
    pd.DataFrame({"method": [UNET_ROW, UNET_ROW, "ISFRNet"], "name": ["b.jpg", "a.jpg", "a.jpg"],
                  "mask_name": ["2.png", "1.png", "1.png"], "psnr": [30.0, 20.0, 99.0],
                  "source": ["s", "s", "t"]}).to_csv(committed, index=False)
    P = get_preset("smoke")
    rows = unet_scores(P, _dataset([("a.jpg", "1.png"), ("b.jpg", "2.png")]), committed)
    assert rows["psnr"].tolist() == [20.0, 30.0]  # in the dataset's order, the U-Net's rows only
    assert (rows["method"] == UNET_ROW).all() and rows["source"].str.contains("checkpoint is not kept").all()
    with pytest.raises(FileNotFoundError, match="lacks its scores"):
        unet_scores(P, _dataset([("a.jpg", "1.png"), ("c.jpg", "3.png")]), committed)
