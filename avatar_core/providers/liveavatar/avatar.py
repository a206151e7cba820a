"""One session's LiveAvatar avatar: what FULL and LITE share.

New -> a session token (the upstream session exists from here, and the ledger knows it);
Start -> sessions/start, then our server joins the LiveKit room (room_link.py) and the
avatar's frames and audio feed the same clock, lip-sync hold, keying and fastrtc streams
as every provider. A keep-alive runs while open; close() stops the upstream session on
every exit path (through the service's ledger, retried until LiveAvatar confirms).
full.py and lite.py say how speech is asked for.
"""

from __future__ import annotations

import asyncio
import logging
from abc import abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...events import EventSink, MediaFailed, UpstreamMessage
from ...media.audio_buffer import AudioBuffer
from ...media.format import AUDIO_RATE, SAMPLES_PER_TICK, MediaTick
from ...media.frame_history import UpstreamVideo
from ...tasks import TaskOwner
from ...text import json_object
from ..base import QUALITY_SIZES, Avatar, Quality
from .client import LiveAvatarClient, SessionToken, StartedSession
from .errors import LiveAvatarError, RoomError, SessionClosedError
from .room_link import RoomLink

log = logging.getLogger(__name__)
MEDIA_STALL_S = 5.0  # no video for this long: the room's media is gone (a dead track never "ends")
MAX_SAID_CHARS = 300  # of what the avatar says, in one status line
# the SDK's audio jitter buffer holds received audio this long more than its video
# (measured: mouth 65-105 ms before the voice without it; BENCHMARKS.md), so the frame
# shown is held back by that, plus whatever audio waits in our buffer
LIVEKIT_AUDIO_LEAD_S = 0.08


@dataclass(frozen=True)
class Timing:
    connect_timeout_s: float  # joining the room (and LITE's socket)
    keep_alive_s: float


class LiveAvatarAvatar(Avatar):
    mode: str  # "FULL" or "LITE": each mode's class says

    def __init__(self, client: LiveAvatarClient, token: SessionToken, avatar_label: str, quality: Quality,
                 events: EventSink, timing: Timing, stop_upstream: Callable[[str], Awaitable[None]]) -> None:
        self._client, self._token = client, token
        self._avatar_label, self._quality = avatar_label, quality
        self._events, self._timing = events, timing
        self._stop_upstream = stop_upstream  # the service's: retried until LiveAvatar confirms
        self._size = QUALITY_SIZES[quality]
        self._audio = AudioBuffer()
        self._blank = np.zeros((self._size[1], self._size[0], 3), np.uint8)
        self._room = RoomLink(self._size, self._audio, self._room_event)
        self._tasks = TaskOwner(f"liveavatar-{token.session_id[:8]}")
        self._started: StartedSession | None = None
        self.talking = False  # from LiveAvatar's own events
        self._closed = False
        self.upstream_id = token.session_id

    @property
    def size(self) -> tuple[int, int]:
        return self._size

    @property
    def description(self) -> str:
        w, h = self._size
        return (f"LiveAvatar {self.mode} avatar {self._avatar_label}, {self._quality} {w}x{h}, "
                f"upstream {self.upstream_id[:8] if self.upstream_id else '?'}")

    async def start(self) -> None:
        self._started = await self._client.start(self._token)
        if self._closed:
            raise RoomError("The session was closed while it was connecting.")
        await self._room.connect(self._started.livekit_url, self._started.livekit_client_token,
                                 self._timing.connect_timeout_s)
        await self._connected(self._started)
        if self._closed:
            raise RoomError("The session was closed while it was connecting.")
        self._tasks.spawn(self._keep_alive_forever(), "keep-alive")

    async def _connected(self, started: StartedSession) -> None:
        """The room is joined: anything else the mode needs (LITE: its socket)."""
        return None

    def tick(self, index: int) -> MediaTick:
        if self._room.frames.seconds_since_frame() > MEDIA_STALL_S:
            raise RoomError(f"LiveAvatar's video stopped arriving (nothing for {MEDIA_STALL_S:.0f} s).")
        audio, _ = self._audio.pull(SAMPLES_PER_TICK)
        # the frame that arrived as long ago as this audio waited: lips stay with the voice
        frame = self._room.frames.frame_from(LIVEKIT_AUDIO_LEAD_S + self._audio.pending_samples / AUDIO_RATE)
        return MediaTick(self._blank if frame is None else frame, audio, self.talking)

    @property
    def queued_audio_s(self) -> float:
        return self._audio.pending_samples / AUDIO_RATE

    def upstream_video(self) -> UpstreamVideo:
        return self._room.frames.measure()

    def _room_event(self, event: dict[str, Any]) -> None:
        if event.get("kind") == "ended":
            self._media_failed(RoomError(str(event.get("message") or "LiveAvatar's room closed.")))
        elif event.get("kind") == "publish_failed":
            self._events.emit(UpstreamMessage("Error: a command did not reach LiveAvatar's room; try again."))
        elif event.get("kind") == "data" and event.get("topic") == "agent-response":
            message = json_object(str(event.get("payload") or ""))
            if message is not None:
                self._agent_event(message)

    def _agent_event(self, event: dict[str, Any]) -> None:
        """An event on the room's agent-response topic (FULL)."""
        return None

    def _media_failed(self, error: LiveAvatarError) -> None:
        if not self._closed:
            self._events.emit(MediaFailed(error))

    async def _keep_alive_forever(self) -> None:
        while True:
            await asyncio.sleep(self._timing.keep_alive_s)
            try:
                await self._client.keep_alive(self.upstream_id or "")
                await self._keep_alive_extra()
            except SessionClosedError:
                self._media_failed(SessionClosedError())
                return
            except LiveAvatarError as exc:
                log.warning("keep-alive failed: %s", type(exc).__name__)

    async def _keep_alive_extra(self) -> None:
        return None

    @abstractmethod
    async def speak(self, text: str) -> None: ...

    @abstractmethod
    async def interrupt(self) -> None: ...

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._tasks.cancel_all()
        try:
            await self._close_mode()
        finally:
            try:
                await self._stop_upstream(self._token.session_id)
            finally:
                await self._room.close()

    async def _close_mode(self) -> None:
        return None

