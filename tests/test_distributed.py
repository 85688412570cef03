"""fit() under DistributedDataParallel: 2 CPU processes with gloo on the toy stage."""

from __future__ import annotations

import csv
import os
import socket
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from isfr.training import cleanup, dist_info, fit, init_distributed, load_checkpoint

sys.path.insert(0, str(Path(__file__).parent))
from test_training_loop import ToyData, ToyStage, toy_cfg, val_batches  # noqa: E402

WORLD = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RawModuleStage(ToyStage):
    """Wrong: calls its own modules instead of ctx.nets, so gradients are never averaged."""

    def train_step(self, batch, ctx):  # type: ignore[no-untyped-def]
        ctx.nets = dict(self.modules())
        return super().train_step(batch, ctx)


def _worker(rank: int, port: int, run_dir: str, out_dir: str, steps: int, max_steps: int | None,
            misuse: bool = False) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD))
    torch.set_num_threads(1)
    info = init_distributed()
    assert info.world_size == WORLD and info.rank == rank and dist_info() == info
    try:
        stage = RawModuleStage() if misuse else ToyStage()
        if rank == 1:  # replicas must start identical anyway: DDP broadcasts rank 0's weights
            with torch.no_grad():
                stage.g[0].weight.add_(1.0)
        cfg = toy_cfg(total_steps=steps, ckpt_every=3, max_steps_this_call=max_steps, val_every=2)
        res = fit(stage, ToyData(16), cfg, run_dir, val_batches=val_batches)
        torch.save({"params": {k: v.detach().clone() for k, v in stage.g.state_dict().items()}
                    | {f"d.{k}": v.detach().clone() for k, v in stage.d.state_dict().items()},
                    "seen": stage.seen, "steps": [h[0] for h in stage.history], "step": res.step},
                   Path(out_dir) / f"rank{rank}.pt")
    finally:
        cleanup()


def _spawn(tmp_path: Path, name: str, steps: int, max_steps: int | None = None,
           misuse: bool = False) -> list[dict]:
    out = tmp_path / name
    out.mkdir()
    mp.spawn(_worker, args=(_free_port(), str(tmp_path / "run"), str(out), steps, max_steps, misuse),
             nprocs=WORLD, join=True)
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]


@pytest.mark.slow
def test_ddp_two_cpu_processes(tmp_path: Path) -> None:
    first = _spawn(tmp_path, "a", steps=6, max_steps=4)
    assert [r["step"] for r in first] == [4, 4]
    second = _spawn(tmp_path, "b", steps=6)  # resume under DDP
    assert [r["steps"] for r in second] == [[5, 6], [5, 6]]

    for results in (first, second):
        p0, p1 = results[0]["params"], results[1]["params"]
        assert all(torch.equal(p0[k], p1[k]) for k in p0), "parameters differ across ranks"
        # each rank drew its own, disjoint samples at every step
        for s in range(len(results[0]["seen"]) // 2):
            assert not set(results[0]["seen"][2 * s: 2 * s + 2]) & set(results[1]["seen"][2 * s: 2 * s + 2])

    run = tmp_path / "run"
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert ckpts == ["best.pt", "last.pt", "step_0000003.pt", "step_0000004.pt", "step_0000006.pt"]
    assert [r["step"] for r in _read_rows(run / "val_log.csv")] == ["2", "4", "6"]
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt", expected_stage="toy")
    assert ckpt["step"] == 6 and len(ckpt["rng"]) == WORLD
    assert torch.equal(ckpt["modules"]["g"]["0.weight"], second[0]["params"]["0.weight"])
    assert [r["step"] for r in _read_rows(run / "train_log.csv")] == ["2", "4", "6"]  # rank 0 only
    assert (run / "done.json").exists()


def _read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_ddp_detects_a_stage_that_bypasses_the_wrappers(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="differ across ranks"):
        _spawn(tmp_path, "a", steps=3, misuse=True)
    assert not (tmp_path / "run" / "checkpoints" / "step_0000003.pt").exists()
