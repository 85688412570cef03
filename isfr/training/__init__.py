"""Stage-agnostic training machinery: :func:`fit`, checkpoints, distributed helpers.

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
from isfr.training.loop import (
    FitResult,
    NonFiniteLossError,
    RunBusyError,
    Stage,
    StepBatchSampler,
    StepContext,
    TrainLoopConfig,
    done_checkpoint,
    fit,
    is_finished,
)

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
]
