"""Small doubles of in-process contracts the unit tests share: a clock that moves only
when told, and an event sink that keeps what it is given."""

from __future__ import annotations

from avatar_core.events import SessionEvent


class FakeTime:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Recorder:
    def __init__(self) -> None:
        self.events: list[SessionEvent] = []

    def emit(self, event: SessionEvent) -> None:
        self.events.append(event)
