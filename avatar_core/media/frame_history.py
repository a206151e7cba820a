"""Frames received from an upstream avatar, with their arrival times, so a tick can take
the frame that arrived as long ago as its audio waited (the lip-sync hold)."""

from __future__ import annotations

import time
from collections import deque

import numpy as np

FRAME_HISTORY = 16  # 0.5 s at 30 fps: more than any hold


class FrameHistory:
    def __init__(self) -> None:
        self._frames: deque[tuple[float, np.ndarray]] = deque(maxlen=FRAME_HISTORY)
        self._latest_at = time.monotonic()

    def add(self, frame: np.ndarray) -> None:
        """From any thread (deque appends are atomic)."""
        self._latest_at = time.monotonic()
        self._frames.append((self._latest_at, frame))

    def frame_from(self, seconds_ago: float) -> np.ndarray | None:
        """The newest frame that arrived at least `seconds_ago` (else the oldest kept)."""
        cutoff = time.monotonic() - seconds_ago
        frames = list(self._frames)  # a snapshot: a reader appends meanwhile
        for arrived, frame in reversed(frames):
            if arrived <= cutoff:
                return frame
        return frames[0][1] if frames else None

    def seconds_since_frame(self) -> float:
        return time.monotonic() - self._latest_at

    def restart(self) -> None:
        """Media has just connected: the stall timer counts from now."""
        self._latest_at = time.monotonic()
