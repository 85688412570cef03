"""Per-process tuning for DataLoader workers (speed only; results are unchanged).

Each sample allocates ~1 MB (float image + mask). With glibc's default trim threshold that memory
goes back to the kernel after every sample and is page-faulted in again for the next one, which
costs about as much as decoding the JPEG. Inside a DataLoader worker (never in the main process)
we raise glibc's mmap threshold to 16 MiB and its trim threshold to 64 MiB once, so freed sample
buffers are reused. A no-op where glibc's ``mallopt`` is unavailable.
"""

from __future__ import annotations

import ctypes
import ctypes.util

from torch.utils.data import get_worker_info

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_state: bool | None = None  # None: not tried in this process


def tune_worker_malloc() -> bool:
    """Apply the tuning once per worker process; return whether it is in effect."""
    global _state
    if _state is None and get_worker_info() is not None:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            _state = libc.mallopt(_M_MMAP_THRESHOLD, 16 << 20) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, 64 << 20) == 1
        except (OSError, AttributeError):
            _state = False
    return bool(_state)
