"""Thin helpers over ``torch.distributed`` so one trainer runs alone or under ``torchrun``.

Single process: every helper is a no-op / identity. Under ``torchrun --nproc_per_node N``
(env vars ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``),
:func:`init_distributed` joins the process group: NCCL when CUDA is available, gloo on CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

__all__ = [
    "DistInfo",
    "init_distributed",
    "dist_info",
    "default_device",
    "barrier",
    "all_reduce_sum",
    "all_gather_objects",
    "broadcast_object",
    "wrap_ddp",
    "has_trainable_params",
    "cleanup",
]


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """True when a process group with more than one process is active."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on rank 0, the only rank that writes logs and checkpoints."""
        return self.rank == 0


def dist_info() -> DistInfo:
    """The current process's :class:`DistInfo` (rank 0 of 1 without a process group)."""
    if not (dist.is_available() and dist.is_initialized()):
        return DistInfo()
    local = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
    return DistInfo(dist.get_rank(), dist.get_world_size(), local)


def init_distributed(backend: str | None = None, timeout_min: float = 30.0) -> DistInfo:
    """Join the process group described by torchrun's env vars; no-op if absent or already joined.

    ``backend`` defaults to ``"nccl"`` with CUDA and ``"gloo"`` otherwise. With NCCL the
    current CUDA device is set to ``LOCAL_RANK``.
    """
    if dist.is_available() and dist.is_initialized():
        return dist_info()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or "RANK" not in os.environ:
        return DistInfo()
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but torch.distributed is not available in this torch build")
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if backend == "nccl":
        torch.cuda.set_device(local)
    dist.init_process_group(backend=backend, init_method="env://", timeout=timedelta(minutes=timeout_min))
    return dist_info()


def default_device(info: DistInfo | None = None) -> torch.device:
    """``cuda:<local_rank>`` when CUDA is available, else CPU."""
    info = info or dist_info()
    return torch.device(f"cuda:{info.local_rank}") if torch.cuda.is_available() else torch.device("cpu")


def barrier() -> None:
    """Wait for all ranks (no-op single process)."""
    if dist_info().enabled:
        dist.barrier()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum ``t`` over ranks in place and return it (identity single process)."""
    if dist_info().enabled:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_gather_objects(obj: Any) -> list[Any]:
    """Picklable ``obj`` from every rank, indexed by rank (``[obj]`` single process)."""
    info = dist_info()
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank."""
    if not dist_info().enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def has_trainable_params(module: nn.Module) -> bool:
    """True if any parameter of ``module`` requires grad."""
    return any(p.requires_grad for p in module.parameters())


def wrap_ddp(
    modules: dict[str, nn.Module], device: torch.device, find_unused_parameters: bool = True
) -> dict[str, nn.Module]:
    """Wrap each module that has trainable parameters in ``DistributedDataParallel``.

    Frozen modules (no parameter requiring grad) are returned as they are. Single
    process: returns a copy of ``modules``. DDP broadcasts rank 0's parameters and
    buffers at construction, so all replicas start identical.
    """
    if not dist_info().enabled:
        return dict(modules)
    ids = [device.index] if device.type == "cuda" else None
    return {
        name: DistributedDataParallel(m, device_ids=ids, find_unused_parameters=find_unused_parameters)
        if has_trainable_params(m)
        else m
        for name, m in modules.items()
    }


def cleanup() -> None:
    """Leave the process group if one is active."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
