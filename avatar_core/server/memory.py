"""Returning freed memory to the operating system (measured in BENCHMARKS.md, Memory).

- glibc raises its mmap threshold each time a large block is freed, so after the first
  few sessions, frame-sized buffers (0.7-6 MB) come from the heap and fragment it: RSS
  grew with every session opened and closed although nothing leaked. Pinning the
  threshold keeps such buffers in their own mappings, which go back to the OS when freed.
- A closed session's WebRTC objects refer to each other, so they wait for Python's
  cyclic collector. Once start-up is over its objects are frozen out of collections
  (gc.freeze), which makes every later full collection short; after sessions close,
  one collection and malloc_trim hand their memory back.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import sys
import time

log = logging.getLogger(__name__)
M_MMAP_THRESHOLD = -3
FRAME_SIZED = 256 * 1024


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 - both exist in glibc only
        return libc
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return None


def pin_mmap_threshold(threshold: int = FRAME_SIZED) -> bool:
    """True when set (glibc on Linux); elsewhere a no-op."""
    libc = _glibc()
    if libc is None:
        log.info("mallopt unavailable; freed frame memory may stay with the process")
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, threshold))


def freeze_startup_heap() -> None:
    """Leave everything alive after start-up out of later collections."""
    gc.collect()
    gc.freeze()


def collect_garbage() -> float:
    """One full collection; returns the seconds it held the interpreter."""
    began = time.perf_counter()
    gc.collect()
    return time.perf_counter() - began


def trim_heap() -> None:
    """Return free heap pages to the OS (glibc; ctypes lets go of the GIL meanwhile)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
