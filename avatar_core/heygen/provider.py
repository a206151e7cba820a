"""HeyGen as an avatar provider (v1 media): the server is the WebRTC peer.

New -> streaming.new (HeyGen's offer); Start -> our answer through streaming.start,
our candidates to streaming.ice, wait until media connects. Received VP8 frames and
Opus audio feed the same media clock, keying and fastrtc streams as the offline
avatar; data-channel events go to the status log. A keep-alive runs while the
session is open, and close() stops the upstream session on every exit path.

The media transport is one class (V1WebRTCMedia) behind a small interface, so a
LiveKit transport (HeyGen v2, LiveAvatar) can sit beside it without touching the UI.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import av
import numpy as np
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from ..audio_buffer import AudioBuffer
from ..face import QUALITY_SIZES
from ..local_avatar import check_quality
from ..media import AUDIO_RATE, SAMPLES_PER_TICK, MediaTick
from .client import HeyGenClient, NewSession
from .errors import HeyGenError, MediaError, SessionClosedError

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 15.0
KEEP_ALIVE_EVERY_S = 30.0
MAX_AUDIO_BACKLOG = AUDIO_RATE // 10  # 100 ms: older received audio is dropped, keeping lips in sync
MEDIA_STALL_S = 5.0  # no video for this long: HeyGen's media is gone (a dead track never "ends")
# aiortc holds 4 audio packets (80 ms) before releasing audio and no video, so received
# video is held back by that, plus whatever audio waits in our buffer, to keep lips in sync
AIORTC_AUDIO_PREFETCH_S = 0.08
FRAME_HISTORY = 16


class MediaTransport(Protocol):
    """How HeyGen's media reaches us: v1 WebRTC now; LiveKit later."""

    async def connect(self, client: HeyGenClient, session: NewSession) -> None: ...

    def frame_from(self, seconds_ago: float) -> np.ndarray | None: ...

    def seconds_since_frame(self) -> float: ...

    async def close(self) -> None: ...


class V1WebRTCMedia:
    def __init__(self, size: tuple[int, int], audio: AudioBuffer, on_message: Callable[[dict[str, Any]], None],
                 on_lost: Callable[[MediaError], None], connect_timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        self._size, self._audio, self._connect_timeout_s = size, audio, connect_timeout_s
        self._on_message, self._on_lost = on_message, on_lost
        self._frames: deque[tuple[float, np.ndarray]] = deque(maxlen=FRAME_HISTORY)
        self._latest_at = time.monotonic()
        self._readers: list[asyncio.Task[None]] = []
        self.pc: RTCPeerConnection | None = None

    async def connect(self, client: HeyGenClient, session: NewSession) -> None:
        if not session.sdp:
            raise MediaError("HeyGen offered LiveKit (v2) media, which this app does not receive yet.")
        servers = [RTCIceServer(urls=urls, username=s.get("username"), credential=s.get("credential"))
                   for s in session.ice_servers if (urls := s.get("urls") or s.get("url"))]
        pc = self.pc = RTCPeerConnection(RTCConfiguration(iceServers=servers or None))
        settled = asyncio.Event()  # connected, or failed: either way stop waiting

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState in ("connected", "failed", "closed"):
                settled.set()
            if pc.connectionState == "failed":
                self._on_lost(MediaError("The connection to HeyGen's media failed."))

        @pc.on("track")
        def on_track(track) -> None:
            reader = self._read_video if track.kind == "video" else self._read_audio
            self._readers.append(asyncio.ensure_future(reader(track)))

        @pc.on("datachannel")
        def on_channel(channel) -> None:
            channel.on("message", self._message)

        await pc.setRemoteDescription(RTCSessionDescription(sdp=session.sdp["sdp"], type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        await client.start(session.session_id, pc.localDescription.sdp)
        for candidate in _candidates(pc.localDescription.sdp):  # HeyGen expects them trickled
            await client.ice(session.session_id, candidate)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(settled.wait(), self._connect_timeout_s)
        if pc.connectionState != "connected":
            raise MediaError(f"HeyGen's media did not connect within {self._connect_timeout_s:.0f} s. A firewall, VPN "
                             "or missing TURN relay can block WebRTC; check the network.")
        self._latest_at = time.monotonic()

    def frame_from(self, seconds_ago: float) -> np.ndarray | None:
        """The newest frame that arrived at least `seconds_ago` (else the oldest kept)."""
        cutoff = time.monotonic() - seconds_ago
        frames = list(self._frames)  # a snapshot: the reader appends from the event loop
        for arrived, frame in reversed(frames):
            if arrived <= cutoff:
                return frame
        return frames[0][1] if frames else None

    def seconds_since_frame(self) -> float:
        return time.monotonic() - self._latest_at

    def _message(self, raw: str | bytes) -> None:
        with contextlib.suppress(ValueError, TypeError):
            event = json.loads(raw)
            if isinstance(event, dict):
                self._on_message(event)

    async def _read_video(self, track) -> None:
        try:
            while True:
                frame = await track.recv()
                self._frames.append((time.monotonic(), await asyncio.to_thread(self._to_bgr, frame)))
                self._latest_at = time.monotonic()
        except MediaStreamError:
            self._on_lost(MediaError("HeyGen's video stopped arriving."))

    def _to_bgr(self, frame: av.VideoFrame) -> np.ndarray:
        width, height = self._size
        if (frame.width, frame.height) != (width, height):
            frame = frame.reformat(width=width, height=height)
        return frame.to_ndarray(format="bgr24")

    async def _read_audio(self, track) -> None:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)
        try:
            while True:
                for out in resampler.resample(await track.recv()):
                    self._audio.push(out.to_ndarray().reshape(-1))
                self._audio.trim_to(MAX_AUDIO_BACKLOG)
        except MediaStreamError:
            self._on_lost(MediaError("HeyGen's audio stopped arriving."))

    async def close(self) -> None:
        for reader in self._readers:
            reader.cancel()
        if self.pc is not None:
            await self.pc.close()


def _candidates(sdp: str) -> list[dict[str, Any]]:
    """Our answer's candidates in the browser's RTCIceCandidate JSON shape."""
    out, mid, index = [], None, -1
    for line in sdp.splitlines():
        if line.startswith("m="):
            index += 1
        elif line.startswith("a=mid:"):
            mid = line[6:]
        elif line.startswith("a=candidate:"):
            out.append({"candidate": line[2:], "sdpMid": mid, "sdpMLineIndex": index, "usernameFragment": None})
    return out


class HeyGenAvatar:
    def __init__(self, client: HeyGenClient, session: NewSession, avatar_id: str, quality: str,
                 connect_timeout_s: float = CONNECT_TIMEOUT_S, keep_alive_s: float = KEEP_ALIVE_EVERY_S) -> None:
        self._keep_alive_s = keep_alive_s
        self._client, self._session = client, session
        self._avatar_id, self._quality = avatar_id, quality
        self._size = QUALITY_SIZES[quality]
        self._audio = AudioBuffer()
        self._blank = np.zeros((self._size[1], self._size[0], 3), np.uint8)
        self._media: MediaTransport = V1WebRTCMedia(self._size, self._audio, self._message, self._lost,
                                                    connect_timeout_s)
        self._lost_reason: MediaError | None = None
        self._keep_alive: asyncio.Task[None] | None = None
        self._talking = False  # from HeyGen's own events: avatar_start_talking .. avatar_stop_talking
        self._said: list[str] = []  # pieces of what the avatar is saying, logged once it ends
        self._talk_pending = False  # a talk task was sent: its answer goes to on_reply
        self.on_reply: Callable[[str], None] | None = None
        self._closed = False
        self.on_event: Callable[[str], None] | None = None

    @classmethod
    async def create(cls, client: HeyGenClient, avatar_id: str, voice_id: str, quality: str,
                     connect_timeout_s: float = CONNECT_TIMEOUT_S, keep_alive_s: float = KEEP_ALIVE_EVERY_S,
                     knowledge_base: str | None = None) -> HeyGenAvatar:
        check_quality(quality)
        avatar_id = (avatar_id or "").strip() or "default"  # HeyGen's own default avatar
        session = await client.new_session(quality, avatar_id, (voice_id or "").strip() or None,
                                           knowledge_base=knowledge_base)
        return cls(client, session, avatar_id, quality, connect_timeout_s, keep_alive_s)

    @property
    def size(self) -> tuple[int, int]:
        return self._size

    @property
    def upstream_id(self) -> str:
        return self._session.session_id

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
        self._keep_alive = asyncio.create_task(self._keep_alive_forever())

    def tick(self, index: int) -> MediaTick:
        if self._media.seconds_since_frame() > MEDIA_STALL_S:
            self._lost(MediaError(f"HeyGen's video stopped arriving (nothing for {MEDIA_STALL_S:.0f} s)."))
        if self._lost_reason is not None:
            raise self._lost_reason
        audio, _ = self._audio.pull(SAMPLES_PER_TICK)
        audio_wait_s = AIORTC_AUDIO_PREFETCH_S + self._audio.pending_samples / AUDIO_RATE
        frame = self._media.frame_from(audio_wait_s)
        return MediaTick(self._blank if frame is None else frame, audio, self._talking)

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
            self._talking = kind == "avatar_start_talking"  # the clock logs the change
        elif kind == "avatar_talking_message" and event.get("message"):
            self._said.append(str(event["message"]))
        elif kind == "avatar_end_message" and self._said:
            said, self._said = "".join(self._said).strip(), []
            if self.on_event:
                self.on_event(f"HeyGen says: {said[:300]}")
            if self._talk_pending and self.on_reply:
                self._talk_pending = False
                self.on_reply(said)

    def _lost(self, reason: MediaError) -> None:
        if self._lost_reason is None and not self._closed:
            self._lost_reason = reason  # the next tick raises it: the session closes with this message

    async def _keep_alive_forever(self) -> None:
        while True:
            await asyncio.sleep(self._keep_alive_s)
            try:
                await self._client.keep_alive(self._session.session_id)
            except SessionClosedError:
                self._lost(MediaError("HeyGen closed the session (idle or time limit)."))
                return
            except HeyGenError as exc:
                log.warning("keep_alive failed: %s", exc)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._keep_alive is not None:
            self._keep_alive.cancel()
        try:
            await self._client.stop(self._session.session_id)
        except HeyGenError as exc:  # already gone upstream is fine; anything else is logged
            log.info("streaming.stop for %s: %s", self._session.session_id[:8], exc)
        finally:
            await self._media.close()
