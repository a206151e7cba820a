"""The local HeyGen stand-in's media side: a real WebRTC peer (aiortc) that offers
VP8 video, Opus audio and a data channel, like HeyGen's v1 servers, and streams the
offline avatar on its green screen, speaking the tasks it is given."""

from __future__ import annotations

import asyncio
import fractions
import json
import re
import time
from collections import deque
from typing import Any

import numpy as np
from aiortc import RTCConfiguration, RTCIceCandidate, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.sdp import candidate_from_sdp
from av import AudioFrame, VideoFrame

from ...media.format import AUDIO_RATE, FPS
from ...providers.local.avatar import LocalAvatar

VIDEO_CLOCK = 90_000
AUDIO_FRAME_SAMPLES = AUDIO_RATE // 50  # 20 ms


# wall-clock times at which an avatar's clock began sending speech, for the benchmark's
# latency breakdown (the stand-in's share of Repeat -> speech); reported by /_local/stats
SPEECH_STARTS: deque[float] = deque(maxlen=200)


class AvatarClock:
    """The avatar's ticks, driven by the audio track (40 ms of audio per tick), so its
    audio never queues behind its video; the video track sends the newest frame and
    only advances the clock itself when audio is not being pulled."""

    def __init__(self, avatar: LocalAvatar, on_speaking) -> None:
        self.avatar = avatar
        self.index = 0
        self.audio = np.zeros(0, np.float32)
        self.frame: np.ndarray | None = None
        self.audio_flowing = False  # set once the audio track pulls: from then on it drives the ticks
        self._speaking = False
        self._on_speaking = on_speaking

    def _advance(self) -> None:
        tick = self.avatar.tick(self.index)
        self.index += 1
        self.frame = tick.frame
        self.audio = np.concatenate([self.audio, tick.audio])
        if tick.speaking != self._speaking:
            self._speaking = tick.speaking
            if tick.speaking:
                SPEECH_STARTS.append(time.time())
            self._on_speaking(tick.speaking)

    def take_audio(self, n: int) -> np.ndarray:
        self.audio_flowing = True
        while self.audio.size < n:
            self._advance()
        out, self.audio = self.audio[:n], self.audio[n:]
        return out

    def latest_frame(self) -> np.ndarray:
        if self.frame is None or not self.audio_flowing:
            self._advance()  # no audio pulled yet: the video keeps the picture alive
            self.audio = self.audio[-AUDIO_FRAME_SAMPLES:]
        assert self.frame is not None  # _advance set it
        return self.frame


class _Paced(MediaStreamTrack):
    def __init__(self, period: float, stop_after_s: float | None) -> None:
        super().__init__()
        self._period, self._count = period, 0
        self._start: float | None = None
        self._stop_after_s = stop_after_s  # counted from the first frame sent

    async def _wait_turn(self) -> int:
        if self._start is None:
            self._start = time.monotonic()
        start = self._start
        dropped = self._stop_after_s is not None and time.monotonic() - start > self._stop_after_s
        if self.readyState != "live" or dropped:
            self.stop()  # "media dropped mid-stream"
            raise MediaStreamError
        wait = start + self._count * self._period - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._count += 1
        return self._count - 1


class AvatarVideoTrack(_Paced):
    kind = "video"

    def __init__(self, clock: AvatarClock, stop_after_s: float | None) -> None:
        super().__init__(1 / FPS, stop_after_s)
        self._clock = clock

    async def recv(self) -> VideoFrame:
        n = await self._wait_turn()
        frame = VideoFrame.from_ndarray(np.ascontiguousarray(self._clock.latest_frame()), format="bgr24")
        frame.pts, frame.time_base = n * VIDEO_CLOCK // FPS, fractions.Fraction(1, VIDEO_CLOCK)
        return frame


class AvatarAudioTrack(_Paced):
    kind = "audio"

    def __init__(self, clock: AvatarClock, stop_after_s: float | None) -> None:
        super().__init__(AUDIO_FRAME_SAMPLES / AUDIO_RATE, stop_after_s)
        self._clock = clock

    async def recv(self) -> AudioFrame:
        n = await self._wait_turn()
        pcm = (np.clip(self._clock.take_audio(AUDIO_FRAME_SAMPLES), -1, 1) * 32767).astype(np.int16)
        frame = AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts = AUDIO_RATE, n * AUDIO_FRAME_SAMPLES
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        return frame


class AvatarPeer:
    """One session's peer: offer first (HeyGen's servers offer), then take the answer."""

    def __init__(self, avatar: LocalAvatar, drop_media_after_s: float | None = None,
                 break_ice: bool = False) -> None:
        self.avatar = avatar
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # loopback only: no public STUN
        self._break_ice = break_ice
        self._task_id: str | None = None
        self._task_started = 0.0
        self._clock = AvatarClock(avatar, self._on_speaking)
        self.pc.addTrack(AvatarVideoTrack(self._clock, drop_media_after_s))
        self.pc.addTrack(AvatarAudioTrack(self._clock, drop_media_after_s))
        self.channel = self.pc.createDataChannel("heygen")

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        sdp = self.pc.localDescription.sdp
        if self._break_ice:  # fault: no usable candidates, so ICE can never connect
            sdp = re.sub(r"a=candidate:.*\r\n", "", sdp)
        return sdp

    async def accept_answer(self, sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

    async def add_candidate(self, candidate: dict[str, Any]) -> None:
        line = str(candidate.get("candidate") or "")
        if not line:
            return
        parsed: RTCIceCandidate = candidate_from_sdp(line.removeprefix("candidate:"))
        parsed.sdpMid, parsed.sdpMLineIndex = candidate.get("sdpMid"), candidate.get("sdpMLineIndex")
        await self.pc.addIceCandidate(parsed)

    @property
    def connected(self) -> bool:
        return self.pc.connectionState == "connected"

    def send_event(self, event: dict[str, Any]) -> None:
        if self.channel.readyState == "open":
            self.channel.send(json.dumps(event))

    async def speak(self, task_id: str, text: str) -> None:
        self._task_id = task_id
        await self.avatar.speak(text)
        words = text.split(" ")
        for i in range(0, len(words), 4):  # HeyGen streams what is said in pieces
            piece = " ".join(words[i : i + 4]) + (" " if i + 4 < len(words) else "")
            self.send_event({"type": "avatar_talking_message", "task_id": task_id, "message": piece})

    async def interrupt(self) -> None:
        await self.avatar.interrupt()

    def _on_speaking(self, speaking: bool) -> None:
        if speaking:
            self._task_started = time.monotonic()
            self.send_event({"type": "avatar_start_talking", "task_id": self._task_id})
        else:
            duration_ms = round(1000 * (time.monotonic() - self._task_started))
            self.send_event({"type": "avatar_stop_talking", "task_id": self._task_id, "duration_ms": duration_ms})
            self.send_event({"type": "avatar_end_message", "task_id": self._task_id})

    async def close(self) -> None:
        await self.avatar.close()
        await self.pc.close()
