"""The one typed event path from a session's parts (its provider, its media clock,
its viewers) to the session. Parts call `emit` from whatever thread they run on;
delivery always happens on the event loop, in order, through Runtime.hand_over.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from .server.runtime import Runtime

ViewerKind = Literal["video", "audio"]
MAX_EARLY_EVENTS = 100  # emitted before the session listens (a provider being set up)


@dataclass(frozen=True)
class SpeakingChanged:
    speaking: bool
    at: float = field(compare=False)  # when the tick that changed it began (time.monotonic)


@dataclass(frozen=True)
class UpstreamMessage:
    """A line for the status log from the avatar or its service (what it said, a problem)."""

    text: str


@dataclass(frozen=True)
class NativeReply:
    """The provider's own LLM answered; the text goes to the transcript."""

    text: str


@dataclass(frozen=True)
class MediaFailed:
    """The media cannot go on; the session closes with this reason."""

    error: BaseException


@dataclass(frozen=True)
class ViewerChanged:
    kind: ViewerKind
    attached: bool


SessionEvent = SpeakingChanged | UpstreamMessage | NativeReply | MediaFailed | ViewerChanged


class EventSink(Protocol):
    def emit(self, event: SessionEvent) -> None: ...


class SessionEvents:
    """Where a session's parts send events; the session listens once it exists."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._listener: Callable[[SessionEvent], None] | None = None
        self._early: deque[SessionEvent] = deque(maxlen=MAX_EARLY_EVENTS)
        self._closed = False

    def emit(self, event: SessionEvent) -> None:
        if not self._closed:
            self._runtime.hand_over(self._deliver, event)

    def listen(self, listener: Callable[[SessionEvent], None]) -> None:
        """Called on the loop; events emitted before this are delivered now."""
        self._listener = listener
        while self._early:
            listener(self._early.popleft())

    def close(self) -> None:
        """No more events: the session has closed (late ones from threads are dropped)."""
        self._closed, self._listener = True, None
        self._early.clear()

    def _deliver(self, event: SessionEvent) -> None:
        if self._closed:
            return
        if self._listener is None:
            self._early.append(event)
        else:
            self._listener(event)
