"""Files written before a change still load: an exported pipeline (``isfr export``) and a finished run
folder (``checkpoints/best.pt``, ``done.json``, ``config.json``) written by the code of 2026-12-06, commit
193e59e (before the package was split into subpackages), committed under tests/fixtures/legacy/ and read
with ``weights_only=True``. ``python tests/test_legacy_files.py --write`` wrote them: a smoke preset with
narrower networks (so the files stay under 1 MB) trained for two steps per stage on synthetic faces."""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import torch

LEGACY = Path(__file__).parent / "fixtures" / "legacy"
EXPORT = LEGACY / "isfrnet_smoke_tiny.pt"
RUN = LEGACY / "ifr_run"
EXPECTED = LEGACY / "expected.json"
#: the narrow smoke preset the files were written with
OVERRIDES = {"stylegan.channel_max": 8, "stylegan.style_dim": 16, "psp.width": 0.03125, "ifr.ngf": 2, "sfr.ngf": 2,
             "disc.ndf": 2, "schedule.stylegan_steps": 2, "schedule.psp_steps": 2, "schedule.ifr_steps": 2,
             "schedule.sfr_steps": 2, "schedule.val_images": 1, "schedule.log_every": 1, "schedule.ckpt_every": 2,
             "schedule.val_every": 2}


def _probe() -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed image and mask (64 px) to run the exported model on."""
    g = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, 64, 64, generator=g) * 2 - 1
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 16:40, 20:48] = 1
    return image, mask


def test_exported_file_loads_and_gives_the_recorded_output():
    from isfr.models.isfrnet import ISFRNet

    want = json.loads(EXPECTED.read_text())
    assert EXPORT.stat().st_size < 1_000_000
    model = ISFRNet.from_checkpoint(EXPORT).eval()  # reads with weights_only=True
    raw = torch.load(EXPORT, map_location="cpu", weights_only=True)
    assert raw["preset"] == "smoke" and raw["variant"] == "full" and raw["stored_dtype"] == "float16"
    assert model.cfg.ifr.ngf == 2 and model.cfg.sfr.ngf == 2
    with torch.no_grad():
        out = model(*_probe())["composite"]
    assert abs(out.double().mean().item() - want["export_composite_mean"]) < 1e-5
    assert abs(out.double().abs().sum().item() - want["export_composite_abs_sum"]) < 1e-2


def test_finished_run_folder_loads():
    from isfr.training.checkpoint import read_checkpoint
    from isfr.training.rundir import done_checkpoint, read_done

    want = json.loads(EXPECTED.read_text())
    done = read_done(RUN)
    assert done is not None and int(done["step"]) == 2
    best = done_checkpoint(RUN)
    assert best is not None and best.resolve() == (RUN / "checkpoints" / "best.pt").resolve()
    ckpt = read_checkpoint(best)  # weights_only=True
    assert int(ckpt["step"]) == want["run_best_step"]
    weights = ckpt["modules"]["ifr"]
    total = sum(v.double().sum().item() for v in weights.values() if v.is_floating_point())
    assert abs(total - want["run_ifr_weight_sum"]) < 1e-4
    config = json.loads((RUN / "config.json").read_text())
    assert config["stage"] == "ifr" and config["config"]["ifr"]["ngf"] == 2


def test_legacy_files_stay_small():
    assert sum(p.stat().st_size for p in LEGACY.rglob("*") if p.is_file()) < 1_000_000


def _write() -> None:
    from isfr.experiments.config import get_preset
    from isfr.experiments.runs import run_dir
    from isfr.experiments.trained import export_pipeline
    from isfr.training.checkpoint import read_checkpoint
    from isfr.experiments.pipeline import train_psp, train_stylegan, train_variant
    from isfr.models.isfrnet import ISFRNet

    os.environ.pop("ISFR_DATA_ROOT", None)
    os.environ["ISFR_RUNS_DIR"] = tempfile.mkdtemp()
    os.environ["TORCH_HOME"] = tempfile.mkdtemp()
    P = get_preset("smoke", **OVERRIDES)
    train_stylegan(P)
    train_psp(P)
    train_variant(P, "full")
    shutil.rmtree(LEGACY, ignore_errors=True)
    (RUN / "checkpoints").mkdir(parents=True)
    src = run_dir(P, "ifr")
    for name in ("done.json", "config.json"):
        shutil.copyfile(src / name, RUN / name)
    shutil.copyfile(src / "checkpoints" / "best.pt", RUN / "checkpoints" / "best.pt")
    export_pipeline(P, "full", EXPORT)
    model = ISFRNet.from_checkpoint(EXPORT).eval()
    with torch.no_grad():
        out = model(*_probe())["composite"]
    ckpt = read_checkpoint(RUN / "checkpoints" / "best.pt")
    total = sum(v.double().sum().item() for v in ckpt["modules"]["ifr"].values() if v.is_floating_point())
    EXPECTED.write_text(json.dumps({"export_composite_mean": out.double().mean().item(),
                                    "export_composite_abs_sum": out.double().abs().sum().item(),
                                    "run_best_step": int(ckpt["step"]), "run_ifr_weight_sum": total}, indent=1) + "\n")
    print("wrote", sorted(str(p.relative_to(LEGACY)) for p in LEGACY.rglob("*") if p.is_file()))


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    _write()
