"""Checkpoint format, atomic writes, corrupt/mismatched files, rotation; isfr.core.utils helpers."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from isfr.training.checkpoint import (
    FORMAT_VERSION,
    CheckpointManager,
    CheckpointMismatchError,
    CorruptCheckpointError,
    capture_rng_state,
    config_diff,
    find_latest_checkpoint,
    load_checkpoint,
    make_checkpoint,
    restore_rng_state,
)
from isfr.core.utils import atomic_open, atomic_torch_save, atomic_write_bytes, git_commit, seed_everything

sys.path.insert(0, str(Path(__file__).parent))
from test_training_loop import ToyConfig, ToyStage  # noqa: E402


def toy_checkpoint(step: int, stage: ToyStage | None = None, **kw) -> dict:
    stage = stage or ToyStage()
    return make_checkpoint(stage="toy", preset=kw.pop("preset", "cpu64"), step=step,
                           modules=stage.modules(), optimizers=stage.optimizers(),
                           config=kw.pop("config", ToyConfig()), **kw)


def saved(tmp_path: Path, steps: list[int], keep_last: int = 5) -> CheckpointManager:
    mgr = CheckpointManager(tmp_path, keep_last)
    for s in steps:
        mgr.save(toy_checkpoint(s))
    return mgr


# --------------------------------------------------------------------------- atomic writes


class Boom(Exception):
    pass


def test_atomic_write_leaves_no_partial_file_when_writer_raises(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    with pytest.raises(Boom):
        with atomic_open(target, "wb") as f:
            f.write(b"x" * 1000)
            raise Boom
    assert list(tmp_path.iterdir()) == []
    atomic_write_bytes(b"old", target)
    with pytest.raises(Boom):
        with atomic_open(target, "wb") as f:
            f.write(b"new and partial")
            raise Boom
    assert target.read_bytes() == b"old" and list(tmp_path.iterdir()) == [target]


def test_atomic_torch_save_failure_keeps_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "ckpt.pt"
    atomic_torch_save({"a": torch.ones(3)}, target)
    with pytest.raises(Exception):
        atomic_torch_save({"a": torch.zeros(10_000), "b": lambda: 0}, target)  # unpicklable midway
    assert torch.equal(torch.load(target, weights_only=True)["a"], torch.ones(3))
    assert list(tmp_path.iterdir()) == [target]


def test_atomic_torch_save_names_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """torch reports a disk that fills part-way as "unexpected pos"; with the disk (nearly) full that becomes
    ENOSPC naming the file; the earlier file stays. With room left, torch's error is passed on as it is."""
    import errno
    from collections import namedtuple

    import isfr.core.utils as U

    target = tmp_path / "ckpt.pt"
    atomic_torch_save({"a": torch.ones(3)}, target)

    def short_write(obj, f):
        f.write(b"x" * 4096)
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 538768960 vs 538768848")

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(U.torch, "save", short_write)
    monkeypatch.setattr(U.shutil, "disk_usage", lambda p: usage(2**30, 2**30 - 2**20, 2**20))
    with pytest.raises(OSError) as e:
        atomic_torch_save({"a": torch.zeros(3)}, target)
    assert e.value.errno == errno.ENOSPC and str(target) in str(e.value) and "1 MiB left" in str(e.value)
    monkeypatch.setattr(U.shutil, "disk_usage", lambda p: usage(2**40, 2**39, 2**39))
    with pytest.raises(RuntimeError, match="unexpected pos"):
        atomic_torch_save({"a": torch.zeros(3)}, target)
    monkeypatch.undo()
    assert torch.equal(torch.load(target, weights_only=True)["a"], torch.ones(3))
    assert list(tmp_path.iterdir()) == [target]


# --------------------------------------------------------------------------- format / rotation


def test_checkpoint_contents_and_weights_only_load(tmp_path: Path) -> None:
    mgr = saved(tmp_path, [3])
    ckpt = torch.load(mgr.step_path(3), weights_only=True)  # plain, safe to load
    assert ckpt["format_version"] == FORMAT_VERSION and ckpt["stage"] == "toy"
    assert ckpt["preset"] == "cpu64" and ckpt["step"] == 3
    assert set(ckpt["modules"]) == {"g", "d", "frozen"} and set(ckpt["optimizers"]) == {"g", "d"}
    assert ckpt["config"] == {"width": 4, "lr": 1e-3}
    assert isinstance(ckpt["git_commit"], str) and ckpt["git_commit"]
    assert {"python", "numpy", "torch", "cuda"} <= set(ckpt["rng"][0])


def test_rotation_keeps_last_k_and_links_last_and_best(tmp_path: Path) -> None:
    mgr = CheckpointManager(tmp_path, keep_last=2)
    for s in (1, 2, 3):
        mgr.save(toy_checkpoint(s), best=(s == 1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "last.pt", "step_0000002.pt", "step_0000003.pt"]
    assert load_checkpoint(mgr.last_path)["step"] == 3
    assert load_checkpoint(mgr.best_path)["step"] == 1  # survives pruning of step_0000001.pt
    mgr.save_best(toy_checkpoint(4))
    assert load_checkpoint(mgr.best_path)["step"] == 4


def test_rng_state_round_trip() -> None:
    seed_everything(5)
    state = capture_rng_state()
    a = (random.random(), np.random.rand(), torch.rand(2))
    random.random(), np.random.rand(), torch.rand(5)
    restore_rng_state(state)
    b = (random.random(), np.random.rand(), torch.rand(2))
    assert a[:2] == b[:2] and torch.equal(a[2], b[2])


def test_seed_everything_is_reproducible() -> None:
    seed_everything(11)
    a = (random.random(), np.random.rand(), torch.rand(3))
    seed_everything(11)
    b = (random.random(), np.random.rand(), torch.rand(3))
    assert a[:2] == b[:2] and torch.equal(a[2], b[2])


def test_git_commit_is_a_hash_or_unknown(tmp_path: Path) -> None:
    assert git_commit(tmp_path) == "unknown"  # not a repository
    commit = git_commit()
    assert commit == "unknown" or all(c in "0123456789abcdef" for c in commit.removesuffix("-dirty"))


def test_git_commit_dirty_ignores_figures_outputs(tmp_path: Path) -> None:
    import shutil
    import subprocess

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    run = lambda *a: subprocess.run(["git", *a], cwd=tmp_path, check=True, capture_output=True)  # noqa: E731
    run("init", "-q")
    (tmp_path / "figures").mkdir()
    (tmp_path / "pkg").mkdir()
    (tmp_path / "figures" / "t.md").write_text("a\n")
    (tmp_path / "pkg" / "m.py").write_text("x = 1\n")
    run("add", "-A")
    run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    clean = git_commit(tmp_path / "pkg")
    assert clean and not clean.endswith("-dirty")
    (tmp_path / "figures" / "t.md").write_text("b\n")  # a regenerated output
    assert git_commit(tmp_path / "pkg") == clean
    (tmp_path / "pkg" / "m.py").write_text("x = 2\n")  # code
    assert git_commit(tmp_path / "pkg") == clean + "-dirty"


# --------------------------------------------------------------------------- loading errors


def test_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(FileNotFoundError, match="no complete checkpoint"):
        load_checkpoint(tmp_path)


@pytest.mark.parametrize("keep", [0, 10, 0.5])
def test_corrupt_file_names_it_and_the_previous_checkpoint(tmp_path: Path, keep: float) -> None:
    mgr = saved(tmp_path, [4, 8])
    path = mgr.step_path(8)
    data = path.read_bytes()
    path.write_bytes(data[: int(keep * len(data)) if keep < 1 else keep])
    with pytest.raises(CorruptCheckpointError,
                       match=r"step_0000008\.pt: the file is truncated or corrupt.*resume from .*step_0000004\.pt"):
        load_checkpoint(path)


def test_not_a_checkpoint(tmp_path: Path) -> None:
    torch.save({"weights": torch.ones(1)}, tmp_path / "w.pt")
    with pytest.raises(CorruptCheckpointError, match="w.pt: not an isfr checkpoint"):
        load_checkpoint(tmp_path / "w.pt")


def test_directory_resume_skips_truncated_newest_with_warning(tmp_path: Path) -> None:
    mgr = saved(tmp_path, [4, 8])
    mgr.step_path(8).write_bytes(mgr.step_path(8).read_bytes()[:100])
    (tmp_path / ".step_0000012.pt.x.tmp").write_bytes(b"partial")
    with pytest.warns(UserWarning) as rec:
        ckpt = find_latest_checkpoint(tmp_path)
    assert ckpt["step"] == 4 and ckpt["path"].endswith("step_0000004.pt")
    text = " ".join(str(w.message) for w in rec)
    assert "step_0000008.pt" in text and ".step_0000012.pt.x.tmp" in text
    # a run dir holding checkpoints/ works too
    run = tmp_path / "run"
    saved(run / "checkpoints", [2])
    assert load_checkpoint(run)["step"] == 2


def test_other_architecture_names_keys_and_config_fields(tmp_path: Path) -> None:
    mgr = saved(tmp_path, [4])
    wide_cfg = ToyConfig(width=6)
    wide = ToyStage(wide_cfg)
    with pytest.raises(CheckpointMismatchError) as err:
        load_checkpoint(mgr.step_path(4), modules=wide.modules(), config=wide_cfg)
    msg = str(err.value)
    assert "step_0000004.pt" in msg and "g.0.weight: shape (4, 3, 3, 3) in checkpoint, (6, 3, 3, 3) now" in msg
    assert "width: checkpoint=4, current=6" in msg and "lr" not in msg.split("differ")[-1]
    without_cfg = str(pytest.raises(CheckpointMismatchError, load_checkpoint, mgr.step_path(4),
                                    modules=wide.modules()).value)
    assert "pass config=" in without_cfg


def test_missing_and_unexpected_modules_and_keys(tmp_path: Path) -> None:
    mgr = saved(tmp_path, [1])
    stage = ToyStage()
    mods = {"g": stage.g, "extra": torch.nn.Linear(2, 2), "frozen": stage.frozen}
    msg = str(pytest.raises(CheckpointMismatchError, load_checkpoint, mgr.step_path(1), modules=mods).value)
    assert "module 'extra' missing in checkpoint" in msg and "unexpected module 'd'" in msg
    stage.g.add_module("9", torch.nn.Conv2d(3, 3, 1))
    msg = str(pytest.raises(CheckpointMismatchError, load_checkpoint, mgr.step_path(1),
                            modules={"g": stage.g, "d": stage.d, "frozen": stage.frozen}).value)
    assert "g.9.weight: missing in checkpoint" in msg


def test_stage_and_preset_checks(tmp_path: Path) -> None:
    mgr = saved(tmp_path, [1])
    with pytest.raises(CheckpointMismatchError, match=r"step_0000001\.pt was saved by stage 'toy', not 'sfr'"):
        load_checkpoint(mgr.step_path(1), expected_stage="sfr")
    with pytest.raises(CheckpointMismatchError, match="preset 'cpu64', not 'paper256'"):
        load_checkpoint(mgr.step_path(1), expected_stage="toy", expected_preset="paper256")


def test_load_puts_weights_into_modules(tmp_path: Path) -> None:
    trained = ToyStage()
    with torch.no_grad():
        trained.g[0].weight.add_(1.0)
    CheckpointManager(tmp_path).save(toy_checkpoint(1, trained))
    fresh = ToyStage()
    assert not torch.equal(fresh.g[0].weight, trained.g[0].weight)
    load_checkpoint(tmp_path, expected_stage="toy", modules=fresh.modules(), config=ToyConfig())
    assert torch.equal(fresh.g[0].weight, trained.g[0].weight)


def test_config_diff_flattens_nested_fields() -> None:
    a = {"model": {"width": 4, "depth": 2}, "lr": 1e-4}
    b = {"model": {"width": 8, "depth": 2}, "extra": True, "lr": 1e-4}
    assert config_diff(a, b) == ["extra: checkpoint=<absent>, current=True", "model.width: checkpoint=4, current=8"]
