"""A per-browser status log: plain text lines with the time, newest last."""

from __future__ import annotations

import threading
import time
from collections import deque

MAX_LINES = 200
MAX_LINE_CHARS = 500  # what an upstream or an error says is cut here: the log's size is bounded


class StatusLog:
    def __init__(self) -> None:
        self._lines: deque[str] = deque(maxlen=MAX_LINES)
        self._lock = threading.Lock()
        self.version = 0  # bumped on every change, so pollers can skip unchanged logs

    def add(self, message: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        if len(message) > MAX_LINE_CHARS:
            message = message[: MAX_LINE_CHARS - 1] + "…"
        with self._lock:
            self._lines.append(f"{stamp}  {message}")
            self.version += 1

    def text(self) -> str:
        with self._lock:
            return "\n".join(self._lines)
