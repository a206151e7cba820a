"""Frames received from an upstream avatar, with their arrival times, so a tick can take
the frame that arrived as long ago as its audio waited (the lip-sync hold)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

FRAME_HISTORY = 16  # 0.5 s at 30 fps: more than any hold
STALLED_S = 1.0  # no frame for this long: upstream sends none (its rate is 0)


@dataclass(frozen=True)
class UpstreamVideo:
    """What a relayed avatar's upstream delivers, for the stream stats."""

    fps: float  # frames arriving a second, over the kept frames
    hold_s: float | None  # how far back the last tick took its frame (None: no tick yet)


class FrameHistory:
    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._frames: deque[tuple[float, np.ndarray]] = deque(maxlen=FRAME_HISTORY)
        self._latest_at = now()
        self._hold_s: float | None = None

    def add(self, frame: np.ndarray) -> None:
        """From any thread (deque appends are atomic)."""
        self._latest_at = self._now()
        self._frames.append((self._latest_at, frame))

    def frame_from(self, seconds_ago: float) -> np.ndarray | None:
        """The newest frame that arrived at least `seconds_ago` (else the oldest kept)."""
        self._hold_s = seconds_ago  # one float, kept for the stats
        cutoff = self._now() - seconds_ago
        frames = list(self._frames)  # a snapshot: a reader appends meanwhile
        for arrived, frame in reversed(frames):
            if arrived <= cutoff:
                return frame
        return frames[0][1] if frames else None

    def seconds_since_frame(self) -> float:
        return self._now() - self._latest_at

    def restart(self) -> None:
        """Media has just connected: the stall timer counts from now."""
        self._latest_at = self._now()

    def measure(self) -> UpstreamVideo:
        """Computed when asked (the stats, once a second), from the arrival times kept."""
        arrivals = [arrived for arrived, _ in list(self._frames)]
        span = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else 0.0
        stalled = self.seconds_since_frame() > STALLED_S
        fps = 0.0 if stalled or span <= 0 else (len(arrivals) - 1) / span
        return UpstreamVideo(fps, self._hold_s)
