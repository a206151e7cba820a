"""LITE mode: our offline voice speaks and LiveAvatar's face lip-syncs to it. Each text
is synthesised here sentence by sentence (off the loop) and streamed over the session's
WebSocket as it is made, so the face starts after the first sentence."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from ...errors import SpeechQueueFullError, UserError
from ...events import UpstreamMessage
from ...media.format import AUDIO_RATE
from ..local.speech import Voice
from .avatar import LiveAvatarAvatar
from .client import StartedSession
from .errors import LiveAvatarError, RoomError
from .lite_socket import LiteSocket

log = logging.getLogger(__name__)
MAX_QUEUED_TEXTS = 3  # as the offline avatar: beyond this, speak() refuses
MAX_AHEAD_S = 20.0  # speech sent but not yet played: beyond it, synthesis waits
ROOM_CHECK_S = 0.1


class LiteModeAvatar(LiveAvatarAvatar):
    mode = "LITE"

    def __init__(self, *args: Any, voice: Voice, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._voice = voice
        self._socket = LiteSocket(self._socket_event)
        self._texts: asyncio.Queue[str] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._played_by = time.monotonic()  # when what was sent will have been spoken

    @property
    def description(self) -> str:
        return f"{super().description}, voice {self._voice.label}"

    async def _connected(self, started: StartedSession) -> None:
        if not started.ws_url:
            raise RoomError("LiveAvatar gave no voice socket (ws_url) for this LITE session.")
        await self._socket.connect(started.ws_url, self._timing.connect_timeout_s)

    async def speak(self, text: str) -> None:
        if self._closed:
            raise UserError("The session was closed. Click New to begin again.")
        if self._texts.qsize() >= MAX_QUEUED_TEXTS:
            raise SpeechQueueFullError(f"{MAX_QUEUED_TEXTS} messages are already waiting to be spoken. Wait for "
                                       "the avatar to finish, then send more.")
        self._texts.put_nowait(text)
        if self._worker is None or self._worker.done():
            self._worker = self._tasks.spawn(self._speak_queued(), "synthesis")

    async def _speak_queued(self) -> None:
        while not self._texts.empty():
            text = self._texts.get_nowait()
            try:
                sentences = iter(self._voice.sentences(text))
                while (spoken := await asyncio.to_thread(next, sentences, None)) is not None:
                    audio = spoken.audio  # LiveAvatar moves its own lips
                    while self._played_by - time.monotonic() > MAX_AHEAD_S:  # LiveAvatar's buffer is bounded too
                        await asyncio.sleep(ROOM_CHECK_S)
                    await self._socket.speak(audio)
                    self._played_by = max(self._played_by, time.monotonic()) + audio.size / AUDIO_RATE
                await self._socket.speak_end()
            except LiveAvatarError as exc:
                self._events.emit(UpstreamMessage(f"Error: {exc}"))
                return
            except Exception as exc:  # one bad message must not silence the ones after it
                log.exception("speech synthesis failed")
                self._events.emit(UpstreamMessage(
                    f"Error: the voice could not say that message ({type(exc).__name__})."))

    async def interrupt(self) -> None:
        while not self._texts.empty():
            self._texts.get_nowait()
        await self._tasks.cancel(self._worker)
        self._played_by = time.monotonic()
        self._audio.clear()
        with contextlib.suppress(RoomError):  # a closed socket has been reported as a media failure
            await self._socket.interrupt()

    def _socket_event(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind in ("agent.speak_started", "agent.speak_ended"):
            self.talking = kind == "agent.speak_started"
        elif kind == "socket.closed":
            self._media_failed(RoomError("LiveAvatar closed the session's voice socket."))
        elif kind == "session.state_updated" and message.get("state") in ("closing", "closed"):
            self._media_failed(RoomError("LiveAvatar is closing the session."))

    async def _keep_alive_extra(self) -> None:
        await self._socket.keep_alive()  # LiveAvatar counts activity on the socket too

    async def _close_mode(self) -> None:
        await self._socket.close()
