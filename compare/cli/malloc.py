"""How a ``snapcompare`` process allocates memory: freed buffers are kept for the next pair.

Each pair allocates and frees pixel buffers of tens to hundreds of megabytes (the decoder's own
and the arrays of the diff). By default glibc's malloc maps each such block fresh from the kernel
and unmaps it when freed, so the kernel zero-fills every 4 KiB page again on first touch: on a
1280x10000 screenshot that is about half of the decode time (benchmarks/bench_real.py). With one
arena, no separate mappings for large blocks and no trimming, the next pair reuses the pages the
last one freed. The process then keeps its peak memory until it exits, which suits a command that
compares and exits; a long-lived process embedding the library decides this for itself. The
diff threads then share one malloc lock, which costs little next to the pixel work.
"""

from __future__ import annotations

import ctypes
import os

# mallopt parameters, from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
_SETTINGS = ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1))


def reuse_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory in one arena for reuse; see the module docstring.

    Returns whether every setting was applied: False on other C libraries, where nothing changes.
    Process-wide and not undone, so call it only at the start of a process of one's own.
    """
    try:
        running_glibc = os.confstr("CS_GNU_LIBC_VERSION") is not None  # asks the C library itself
        mallopt = ctypes.CDLL(None).mallopt  # the process's own symbols include glibc's
    except (ValueError, OSError, AttributeError):
        return False
    if not running_glibc:
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    applied = [mallopt(parameter, value) == 1 for parameter, value in _SETTINGS]
    return all(applied)
