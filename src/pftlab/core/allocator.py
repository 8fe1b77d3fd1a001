"""Keep freed memory in the process, so evaluation does not page-fault its activations in again.

glibc hands allocations above its mmap threshold to mmap and gives freed heap tops back to the
kernel; a forward pass over a batch of 256 images allocates tens of MB of activations per layer,
so every batch faults its memory in afresh. How much that costs depends on the kernel's state:
on our 2-core VM, evaluating one model on mnist-writers' 15,003 test images took 0.65-1.6 s
with glibc's defaults and a steady 0.6 s with these settings (scripts/bench_allocator.py).
Allocation only: results are bit-identical.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD = 32 * 2**20  # the largest glibc accepts on 64-bit
TRIM_THRESHOLD = 2**30


@functools.cache  # once per process: mallopt's settings are the process's
def keep_freed_memory() -> str:
    """Raise glibc's mmap and trim thresholds for this process; say what was done.

    Left alone where the user set MALLOC_MMAP_THRESHOLD_ or MALLOC_TRIM_THRESHOLD_, or off glibc.
    """
    if os.environ.get("MALLOC_MMAP_THRESHOLD_") or os.environ.get("MALLOC_TRIM_THRESHOLD_"):
        return "glibc malloc: as set by the environment"
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return "default (not glibc)"
    ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    return "glibc malloc: mmap threshold 32 MiB, trim threshold 1 GiB" if ok else "default (mallopt refused)"
