"""fit() under DistributedDataParallel: 2 CPU processes with gloo on the toy stage."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from isfr.training import cleanup, dist_info, fit, init_distributed, load_checkpoint

sys.path.insert(0, str(Path(__file__).parent))
from test_training_loop import ToyData, ToyStage, toy_cfg  # noqa: E402

WORLD = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, run_dir: str, out_dir: str, steps: int, max_steps: int | None) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD))
    torch.set_num_threads(1)
    info = init_distributed()
    assert info.world_size == WORLD and info.rank == rank and dist_info() == info
    try:
        stage = ToyStage()
        if rank == 1:  # replicas must start identical anyway: DDP broadcasts rank 0's weights
            with torch.no_grad():
                stage.g[0].weight.add_(1.0)
        res = fit(stage, ToyData(16), toy_cfg(total_steps=steps, ckpt_every=3, max_steps_this_call=max_steps),
                  run_dir)
        torch.save({"params": {k: v.detach().clone() for k, v in stage.g.state_dict().items()}
                    | {f"d.{k}": v.detach().clone() for k, v in stage.d.state_dict().items()},
                    "seen": stage.seen, "steps": [h[0] for h in stage.history], "step": res.step},
                   Path(out_dir) / f"rank{rank}.pt")
    finally:
        cleanup()


def _spawn(tmp_path: Path, name: str, steps: int, max_steps: int | None = None) -> list[dict]:
    out = tmp_path / name
    out.mkdir()
    mp.spawn(_worker, args=(_free_port(), str(tmp_path / "run"), str(out), steps, max_steps),
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
    assert ckpts == ["last.pt", "step_0000003.pt", "step_0000004.pt", "step_0000006.pt"]
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt", expected_stage="toy")
    assert ckpt["step"] == 6 and len(ckpt["rng"]) == WORLD
    assert torch.equal(ckpt["modules"]["g"]["0.weight"], second[0]["params"]["0.weight"])
    assert [r["step"] for r in _read_rows(run / "train_log.csv")] == ["2", "4", "6"]  # rank 0 only
    assert (run / "done.json").exists()


def _read_rows(path: Path) -> list[dict]:
    import csv

    with open(path, newline="") as f:
        return list(csv.DictReader(f))
