"""HeyGen's v1 media: the server is the WebRTC peer (aiortc). It answers HeyGen's
offer through streaming.start, trickles its candidates to streaming.ice, and keeps
the received VP8 frames (with their arrival times) and Opus audio for the avatar's
ticks; data-channel events go to the avatar.

One class behind a small interface, so a LiveKit transport (HeyGen v2) can sit beside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any, Protocol, cast

import av
import numpy as np
from aiortc import RTCConfiguration, RTCDataChannel, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from ...events import EventSink, MediaFailed
from ...media.audio_buffer import AudioBuffer
from ...media.format import AUDIO_RATE
from ...media.frame_history import FrameHistory, UpstreamVideo
from ...tasks import TaskOwner
from .client import HeyGenClient, NewSession
from .errors import MediaError

MAX_AUDIO_BACKLOG = AUDIO_RATE // 10  # 100 ms: older received audio is dropped, keeping lips in sync


class MediaTransport(Protocol):
    """How HeyGen's media reaches us: v1 WebRTC now; LiveKit later."""

    async def connect(self, client: HeyGenClient, session: NewSession) -> None: ...

    def frame_from(self, seconds_ago: float) -> np.ndarray | None: ...

    def seconds_since_frame(self) -> float: ...

    def upstream_video(self) -> UpstreamVideo: ...

    async def close(self) -> None: ...


class V1WebRTCMedia:
    def __init__(self, size: tuple[int, int], audio: AudioBuffer, on_message: Callable[[dict[str, Any]], None],
                 events: EventSink, connect_timeout_s: float) -> None:
        self._size, self._audio, self._connect_timeout_s = size, audio, connect_timeout_s
        self._on_message, self._events = on_message, events  # on_message: HeyGen's data channel, on the loop
        self._frames = FrameHistory()
        self._connected = False
        self._lost_early: MediaError | None = None  # lost while connecting: reported once connected
        self._tasks = TaskOwner("heygen-media")
        self.pc: RTCPeerConnection | None = None

    async def connect(self, client: HeyGenClient, session: NewSession) -> None:
        if not session.sdp:
            raise MediaError("HeyGen offered LiveKit (v2) media, which this app does not receive yet.")
        servers = [RTCIceServer(urls=urls, username=s.get("username"), credential=s.get("credential"))
                   for s in session.ice_servers if (urls := s.get("urls") or s.get("url"))]
        # only the servers HeyGen gave: aiortc's default (None) would ask Google's public STUN server
        pc = self.pc = RTCPeerConnection(RTCConfiguration(iceServers=servers))
        settled = asyncio.Event()  # connected, or failed: either way stop waiting

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState in ("connected", "failed", "closed"):
                settled.set()
            if pc.connectionState == "failed":
                self._lost(MediaError("The connection to HeyGen's media failed."))

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            reader = self._read_video if track.kind == "video" else self._read_audio
            self._tasks.spawn(reader(track), f"read-{track.kind}")

        @pc.on("datachannel")
        def on_channel(channel: RTCDataChannel) -> None:
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
        self._frames.restart()
        self._connected = True
        if self._lost_early is not None:
            self._events.emit(MediaFailed(self._lost_early))

    def frame_from(self, seconds_ago: float) -> np.ndarray | None:
        return self._frames.frame_from(seconds_ago)

    def seconds_since_frame(self) -> float:
        return self._frames.seconds_since_frame()

    def upstream_video(self) -> UpstreamVideo:
        return self._frames.measure()

    def _message(self, raw: str | bytes) -> None:
        with contextlib.suppress(ValueError, TypeError):
            event = json.loads(raw)
            if isinstance(event, dict):
                self._on_message(event)

    def _lost(self, error: MediaError) -> None:
        if self._connected:
            self._events.emit(MediaFailed(error))
        elif self._lost_early is None:  # a connect that fails says why itself; one that succeeds reports this
            self._lost_early = error

    async def _read_video(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = cast(av.VideoFrame, await track.recv())  # a video track's frames
                self._frames.add(await asyncio.to_thread(self._to_bgr, frame))
        except MediaStreamError:
            self._lost(MediaError("HeyGen's video stopped arriving."))

    def _to_bgr(self, frame: av.VideoFrame) -> np.ndarray:
        width, height = self._size
        if (frame.width, frame.height) != (width, height):
            frame = frame.reformat(width=width, height=height)
        return frame.to_ndarray(format="bgr24")

    async def _read_audio(self, track: MediaStreamTrack) -> None:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)
        try:
            while True:
                received = cast(av.AudioFrame, await track.recv())  # an audio track's frames
                for out in resampler.resample(received):
                    self._audio.push(out.to_ndarray().reshape(-1))
                self._audio.trim_to(MAX_AUDIO_BACKLOG)
        except MediaStreamError:
            self._lost(MediaError("HeyGen's audio stopped arriving."))

    async def close(self) -> None:
        await self._tasks.cancel_all()
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
