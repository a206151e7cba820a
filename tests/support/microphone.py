"""A headless microphone: what the page's microphone component does, with aiortc. It
sends 48 kHz audio in real time (silence between what it is given to say) through the
app's `microphone` component, and notes when each piece it said actually went out."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection

from tests.support.offers import offer_to, page_peer
from tests.support.speech_audio import resample

RATE = 48_000
FRAME = 960  # 20 ms, as a browser sends


@dataclass
class Said:
    """One piece of audio given to the microphone, and when it went out (monotonic)."""

    first: int  # its first sample, counted from the track's start
    size: int
    started_at: float | None = None
    ended_at: float | None = None

    def time_of(self, offset_s: float) -> float:
        """When the sample `offset_s` into this piece went out."""
        assert self.started_at is not None, "not sent yet"
        return self.started_at + offset_s


class MicrophoneTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._queued = np.zeros(0, np.int16)
        self._sent = 0  # samples sent so far
        self._start: float | None = None
        self._said: list[Said] = []

    def say(self, audio: np.ndarray, rate: int = 16_000) -> Said:
        """Queue `audio` (mono float) after whatever is queued; it goes out in real time."""
        pcm = audio if rate == RATE else resample(audio, rate, RATE)
        said = Said(self._sent + self._queued.size, pcm.size)
        self._queued = np.concatenate([self._queued, np.clip(pcm * 32767, -32768, 32767).astype(np.int16)])
        self._said.append(said)
        return said

    @property
    def quiet(self) -> bool:
        """Everything given has gone out."""
        return self._queued.size == 0

    async def recv(self) -> av.AudioFrame:
        if self._start is None:
            self._start = time.monotonic()
        else:
            await asyncio.sleep(max(0.0, self._start + self._sent / RATE - time.monotonic()))
        chunk = np.zeros(FRAME, np.int16)
        take = min(FRAME, self._queued.size)
        chunk[:take], self._queued = self._queued[:take], self._queued[take:]
        now = time.monotonic()
        for said in self._said:
            if said.started_at is None and said.first < self._sent + FRAME:
                said.started_at = now + (said.first - self._sent) / RATE
            if said.ended_at is None and said.first + said.size <= self._sent + FRAME:
                said.ended_at = now + (said.first + said.size - self._sent) / RATE
        self._said = [s for s in self._said if s.ended_at is None]
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = RATE, self._sent, Fraction(1, RATE)
        self._sent += FRAME
        return frame


async def connect_microphone(url: str, component_id: int, session_hash: str,
                             timeout: float = 20) -> tuple[RTCPeerConnection, MicrophoneTrack]:
    """Connect a microphone as the page does: send-only audio and the "text" data channel
    fastrtc waits for."""
    track = MicrophoneTrack()
    pc, connected = page_peer(track, "sendonly")
    try:
        await offer_to(url, component_id, session_hash, pc)
    except RuntimeError:
        await pc.close()
        raise
    try:
        await asyncio.wait_for(connected.wait(), timeout)
    except TimeoutError:
        await pc.close()
        raise
    return pc, track
