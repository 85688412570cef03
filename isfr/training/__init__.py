"""Stage-agnostic training machinery: :func:`fit` and its one step (:func:`train_step`), checkpoints,
distributed helpers.

A stage (``isfr.training.stages``) implements :class:`Stage`; :func:`fit` runs it.
"""

from isfr.training.checkpoint import (
    CheckpointError,
    CheckpointManager,
    CheckpointMismatchError,
    CorruptCheckpointError,
    find_latest_checkpoint,
    load_checkpoint,
)
from isfr.training.distributed import DistInfo, cleanup, dist_info, init_distributed
from isfr.training.context import Stage, StepContext, TrainLoopConfig
from isfr.training.lock import RunBusyError
from isfr.training.loop import FitResult, NonFiniteLossError, fit, train_step
from isfr.training.rundir import done_checkpoint, is_finished
from isfr.training.sampler import StepBatchSampler

__all__ = [
    "CheckpointError",
    "CheckpointManager",
    "CheckpointMismatchError",
    "CorruptCheckpointError",
    "DistInfo",
    "FitResult",
    "NonFiniteLossError",
    "RunBusyError",
    "Stage",
    "StepBatchSampler",
    "StepContext",
    "TrainLoopConfig",
    "cleanup",
    "dist_info",
    "done_checkpoint",
    "find_latest_checkpoint",
    "fit",
    "init_distributed",
    "is_finished",
    "load_checkpoint",
    "train_step",
]
