"""The page's microphone: a fastrtc send-mode audio stream whose frames go to the listener
of the session that made the offer (server/offers.py knows which browser that was, so the
stream needs no inputs from the page).

fastrtc copies this handler for each connection, resamples the browser's Opus to 16 kHz
and calls `receive` on the event loop for each frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Generator

import av
import numpy as np
from fastrtc import AsyncStreamHandler
from fastrtc.utils import get_current_context

from ..server.workarounds import end_send_stream
from .listener import Listener
from .pauses import SAMPLE_RATE

FindListener = Callable[[str], Listener | None]  # webrtc_id -> the listener of its browser's session
PeerCloser = Callable[[str], None]
IDLE_EMIT_S = 30.0  # nothing is ever sent back; fastrtc's sender gives up on an emit after 60 s
MAX_RATE = 1.25  # audio faster than real time beyond this (and a burst) is dropped: a client cannot
MAX_BURST_S = 0.5  # make the pause detector run flat out


class MicrophoneHandler(AsyncStreamHandler):
    def __init__(self, find: FindListener, close_peer: PeerCloser) -> None:
        super().__init__(expected_layout="mono", input_sample_rate=SAMPLE_RATE)
        self._find, self._close_peer = find, close_peer
        self._listener: Listener | None = None
        self._webrtc_id: str | None = None
        self._done = asyncio.Event()
        self._to_16k: av.AudioResampler | None = None
        self._first_at: float | None = None
        self._samples = 0  # taken so far

    def copy(self) -> MicrophoneHandler:
        return MicrophoneHandler(self._find, self._close_peer)

    def resample(self, frame: av.AudioFrame) -> Generator[av.AudioFrame, None, None]:
        """As fastrtc's, without its fixed output frame size, which holds audio back until a
        whole 960-sample (60 ms at 16 kHz) frame is ready."""
        if self._to_16k is None:
            self._to_16k = av.AudioResampler(format="s16", layout="mono", rate=self.input_sample_rate)
        yield from self._to_16k.resample(frame)

    async def receive(self, frame: tuple[int, np.ndarray]) -> None:
        if self._done.is_set():
            return
        if self._webrtc_id is None:
            webrtc_id = self._webrtc_id = get_current_context().webrtc_id
            self._listener = self._find(webrtc_id)
            if self._listener is not None:
                self._listener.attach(webrtc_id, hang_up=lambda: self._close_peer(webrtc_id))
        _rate, samples = frame
        if not self._in_time(samples.size):
            return
        audio = samples.reshape(-1).astype(np.float32) / 32768.0
        if self._listener is None or not await self._listener.hear(self._webrtc_id, audio):
            self._done.set()  # no started session, or it closed, or a newer microphone replaced this one
            self._close_peer(self._webrtc_id)

    def _in_time(self, size: int) -> bool:
        """Whether this much more audio is within real time (a little over, for jitter)."""
        now = time.monotonic()
        if self._first_at is None:
            self._first_at = now
        allowed = ((now - self._first_at) * MAX_RATE + MAX_BURST_S) * SAMPLE_RATE
        if self._samples + size > allowed:
            return False
        self._samples += size
        return True

    async def emit(self) -> None:
        """Nothing goes back to the browser: wait (returning at once would make fastrtc's
        sender call again in a busy loop)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._done.wait(), IDLE_EMIT_S)
        if self._done.is_set():
            await asyncio.sleep(1.0)  # ended: fastrtc stops asking once its stream is stopped

    async def shutdown(self) -> None:
        """fastrtc cleaned this connection up (closed, replaced, timed out)."""
        self._done.set()
        end_send_stream(self)
        if self._listener is not None and self._webrtc_id is not None:
            self._listener.detach(self._webrtc_id)
