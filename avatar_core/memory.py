"""Returning freed frame memory to the operating system.

glibc raises its mmap threshold each time a large block is freed, so after the first
few sessions, frame-sized buffers (0.7-6 MB) come from the heap and fragment it: RSS
then grows with every session opened and closed, although nothing leaks (measured:
+172 MB over 100 sessions; with the threshold pinned, see BENCHMARKS.md). Pinning it
keeps such buffers in their own mappings, which go back to the OS when freed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)
M_MMAP_THRESHOLD = -3
FRAME_SIZED = 256 * 1024


def pin_mmap_threshold(threshold: int = FRAME_SIZED) -> bool:
    """True when set (glibc on Linux); elsewhere a no-op."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, threshold))
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        log.info("mallopt unavailable; freed frame memory may stay with the process")
        return False
