"""A thread-safe FIFO of speech samples, read in fixed chunks by the media clock.

A part may carry a mark (anything: the offline avatar's mouth-shape track) that
leaves the buffer with its own audio, so whatever is drawn from it stays in step
with what is heard, and clear() drops both at once."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Pulled:
    audio: np.ndarray  # exactly the samples asked for, zero-padded
    speaking: bool  # any of them was pushed audio
    mark: Any = None  # the mark of the part holding the chunk's middle sample
    middle_offset: int | None = None  # where that sample is in its part (None: the middle is padding)


class AudioBuffer:
    def __init__(self) -> None:
        self._parts: deque[np.ndarray] = deque()
        self._marks: deque[Any] = deque()  # one per part
        self._offset = 0  # samples already read from _parts[0]
        self._lock = threading.Lock()

    def push(self, samples: np.ndarray, mark: Any = None) -> None:
        if samples.size:
            with self._lock:
                self._parts.append(np.asarray(samples, np.float32))
                self._marks.append(mark)

    def clear(self) -> None:
        with self._lock:
            self._parts.clear()
            self._marks.clear()
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
                    self._pop()

    def _pop(self) -> None:
        self._parts.popleft()
        self._marks.popleft()
        self._offset = 0

    @property
    def pending_samples(self) -> int:
        with self._lock:
            return sum(p.size for p in self._parts) - self._offset

    def pull(self, n: int) -> tuple[np.ndarray, bool]:
        """Exactly `n` samples (zero-padded) and whether any of them were speech."""
        pulled = self.pull_marked(n)
        return pulled.audio, pulled.speaking

    def pull_marked(self, n: int) -> Pulled:
        """Exactly `n` samples, with the mark and position of the middle one."""
        out = np.zeros(n, np.float32)
        filled = 0
        middle = n // 2
        mark, middle_offset = None, None
        with self._lock:
            while filled < n and self._parts:
                part = self._parts[0]
                take = min(n - filled, part.size - self._offset)
                if filled <= middle < filled + take:
                    mark, middle_offset = self._marks[0], self._offset + middle - filled
                out[filled : filled + take] = part[self._offset : self._offset + take]
                filled += take
                self._offset += take
                if self._offset == part.size:
                    self._pop()
        return Pulled(out, filled > 0, mark, middle_offset)
