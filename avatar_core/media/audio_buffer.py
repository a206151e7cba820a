"""A thread-safe FIFO of speech samples, read in fixed chunks by the media clock."""

from __future__ import annotations

import threading
from collections import deque

import numpy as np


class AudioBuffer:
    def __init__(self) -> None:
        self._parts: deque[np.ndarray] = deque()
        self._offset = 0  # samples already read from _parts[0]
        self._lock = threading.Lock()

    def push(self, samples: np.ndarray) -> None:
        if samples.size:
            with self._lock:
                self._parts.append(np.asarray(samples, np.float32))

    def clear(self) -> None:
        with self._lock:
            self._parts.clear()
            self._offset = 0

    def trim_to(self, max_samples: int) -> None:
        """Drop the oldest audio beyond `max_samples`, so a live source cannot build up latency."""
        with self._lock:
            pending = sum(p.size for p in self._parts) - self._offset
            while pending > max_samples and self._parts:
                drop = min(pending - max_samples, self._parts[0].size - self._offset)
                self._offset += drop
                pending -= drop
                if self._offset == self._parts[0].size:
                    self._parts.popleft()
                    self._offset = 0

    @property
    def pending_samples(self) -> int:
        with self._lock:
            return sum(p.size for p in self._parts) - self._offset

    def pull(self, n: int) -> tuple[np.ndarray, bool]:
        """Exactly `n` samples (zero-padded) and whether any of them were speech."""
        out = np.zeros(n, np.float32)
        filled = 0
        with self._lock:
            while filled < n and self._parts:
                part = self._parts[0]
                take = min(n - filled, part.size - self._offset)
                out[filled : filled + take] = part[self._offset : self._offset + take]
                filled += take
                self._offset += take
                if self._offset == part.size:
                    self._parts.popleft()
                    self._offset = 0
        return out, filled > 0
