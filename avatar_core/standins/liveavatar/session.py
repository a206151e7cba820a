"""One session of the LiveAvatar stand-in, as its REST side and its room both see it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class LocalSession:
    session_id: str
    token: str
    mode: str
    avatar_id: str
    voice_id: str
    sandbox: bool
    created_at: float = field(default_factory=time.time)  # what clients see: seconds since the epoch
    created: float = field(default_factory=time.monotonic)
    last_activity: float = field(default_factory=time.monotonic)
    started: bool = False

    @property
    def status(self) -> str:
        return "active" if self.started else "new"
