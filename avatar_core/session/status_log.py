"""A per-browser status log: plain text lines with the time, newest last."""

from __future__ import annotations

import threading
import time
from collections import deque

MAX_LINES = 200


class StatusLog:
    def __init__(self) -> None:
        self._lines: deque[str] = deque(maxlen=MAX_LINES)
        self._lock = threading.Lock()
        self.version = 0  # bumped on every change, so pollers can skip unchanged logs

    def add(self, message: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        with self._lock:
            self._lines.append(f"{stamp}  {message}")
            self.version += 1

    def text(self) -> str:
        with self._lock:
            return "\n".join(self._lines)
