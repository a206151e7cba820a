"""One session's HeyGen avatar (v1 media).

New -> streaming.new (HeyGen's offer); Start -> the media connects (media.py) and a
keep-alive runs while the session is open; close() stops the upstream session on
every exit path. Received frames and audio feed the same media clock, keying and
fastrtc streams as the offline avatar; HeyGen's data-channel events become events.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

from ...events import EventSink, MediaFailed, NativeReply, UpstreamMessage
from ...media.audio_buffer import AudioBuffer
from ...media.format import AUDIO_RATE, SAMPLES_PER_TICK, MediaTick
from ...media.frame_history import UpstreamVideo
from ...tasks import TaskOwner
from ...text import valid_text
from ..base import QUALITY_SIZES, Avatar, Quality
from .client import HeyGenClient, NewSession
from .errors import HeyGenError, MediaError, SessionClosedError
from .media import MediaTransport, V1WebRTCMedia

log = logging.getLogger(__name__)

MEDIA_STALL_S = 5.0  # no video for this long: HeyGen's media is gone (a dead track never "ends")
# aiortc holds 4 audio packets (80 ms) before releasing audio and no video, so received
# video is held back by that, plus whatever audio waits in our buffer, to keep lips in sync
AIORTC_AUDIO_PREFETCH_S = 0.08
MAX_SAID_PIECES = 500  # pieces of one utterance kept until it ends


class HeyGenAvatar(Avatar):
    def __init__(self, client: HeyGenClient, session: NewSession, avatar_id: str, quality: Quality,
                 events: EventSink, connect_timeout_s: float, keep_alive_s: float,
                 stop_upstream: Callable[[str], Awaitable[None]]) -> None:
        self._stop_upstream = stop_upstream  # the service's: retried until HeyGen confirms
        self._keep_alive_s = keep_alive_s
        self._client, self._session = client, session
        self._avatar_id, self._quality = avatar_id, quality
        self._events = events
        self._size = QUALITY_SIZES[quality]
        self._audio = AudioBuffer()
        self._blank = np.zeros((self._size[1], self._size[0], 3), np.uint8)
        self._media: MediaTransport = V1WebRTCMedia(self._size, self._audio, self._message, events,
                                                    connect_timeout_s)
        self._tasks = TaskOwner(f"heygen-{session.session_id[:8]}")
        self._talking = False  # from HeyGen's own events: avatar_start_talking .. avatar_stop_talking
        self._said: list[str] = []  # pieces of what the avatar is saying, logged once it ends
        self._talk_pending = False  # a talk task was sent: its answer is a NativeReply
        self._closed = False
        self.upstream_id = session.session_id

    @property
    def size(self) -> tuple[int, int]:
        return self._size

    @property
    def description(self) -> str:
        w, h = self._size
        return f"HeyGen avatar {self._avatar_id}, {self._quality} {w}x{h}, upstream {self._session.session_id[:8]}"

    async def start(self) -> None:
        try:
            await self._media.connect(self._client, self._session)
        except HeyGenError:
            raise
        except Exception as exc:  # a bad offer, an SDP aiortc cannot use...: one clear line
            raise MediaError(f"Could not set up HeyGen's media ({type(exc).__name__}).") from exc
        if self._closed:
            raise MediaError("The session was closed while it was connecting.")
        self._tasks.spawn(self._keep_alive_forever(), "keep-alive")

    def tick(self, index: int) -> MediaTick:
        if self._media.seconds_since_frame() > MEDIA_STALL_S:
            raise MediaError(f"HeyGen's video stopped arriving (nothing for {MEDIA_STALL_S:.0f} s).")
        audio, _ = self._audio.pull(SAMPLES_PER_TICK)
        audio_wait_s = AIORTC_AUDIO_PREFETCH_S + self._audio.pending_samples / AUDIO_RATE
        frame = self._media.frame_from(audio_wait_s)
        return MediaTick(self._blank if frame is None else frame, audio, self._talking)

    @property
    def queued_audio_s(self) -> float:
        return self._audio.pending_samples / AUDIO_RATE

    def upstream_video(self) -> UpstreamVideo:
        return self._media.upstream_video()

    async def speak(self, text: str) -> None:
        await self._client.task(self._session.session_id, text, "repeat", "async")

    async def talk(self, text: str) -> None:
        """HeyGen's own LLM answers (its knowledge_base is our system prompt)."""
        self._talk_pending = True
        try:
            await self._client.task(self._session.session_id, text, "talk", "async")
        except BaseException:
            self._talk_pending = False  # no answer is coming: the next message is not one
            raise

    async def interrupt(self) -> None:
        self._talk_pending, self._said = False, []
        await self._client.interrupt(self._session.session_id)
        self._audio.clear()

    def _message(self, event: dict[str, Any]) -> None:
        """HeyGen streams what the avatar says in pieces; the log gets it once, whole."""
        kind = event.get("type")
        if kind in ("avatar_start_talking", "avatar_stop_talking"):
            self._talking = kind == "avatar_start_talking"  # the clock reports the change
        elif kind == "avatar_talking_message" and event.get("message") and len(self._said) < MAX_SAID_PIECES:
            self._said.append(valid_text(str(event["message"])))
        elif kind == "avatar_end_message" and self._said:
            said, self._said = "".join(self._said).strip(), []
            self._events.emit(UpstreamMessage(f"HeyGen says: {said[:300]}"))
            if self._talk_pending:
                self._talk_pending = False
                self._events.emit(NativeReply(said))

    async def _keep_alive_forever(self) -> None:
        while True:
            await asyncio.sleep(self._keep_alive_s)
            try:
                await self._client.keep_alive(self._session.session_id)
            except SessionClosedError:
                self._events.emit(MediaFailed(MediaError("HeyGen closed the session (idle or time limit).")))
                return
            except HeyGenError as exc:
                log.warning("keep_alive failed: %s", exc)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._tasks.cancel_all()
        try:
            await self._stop_upstream(self._session.session_id)
        finally:
            await self._media.close()
