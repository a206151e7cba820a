"""The two fastrtc receive-mode generators: video frames and audio chunks of one
session, both fed by that session's media clock.

fastrtc calls the video generator inside the event loop, so it only hands over the
newest finished frame and never blocks; the audio generator runs in fastrtc's
executor and blocks on the clock-paced audio queue.

When the session closes, the generator closes its own peer connection before it
ends: a generator that just returns makes fastrtc 0.0.34 hand None to the encoder,
and leaves the browser's connection open.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from fastrtc.utils import get_current_context

from .media import AUDIO_RATE, SAMPLES_PER_TICK, TICK_S
from .session import SessionState
from .sessions import SessionManager

PeerCloser = Callable[[str], None]
CLOSE_GRACE_TICKS = 50


def peer_closer(component: Any, sessions: SessionManager) -> PeerCloser:
    """Closes one of `component`'s server-side peer connections, from any thread."""

    def close(webrtc_id: str) -> None:
        pc = component.pcs.get(webrtc_id)  # fastrtc's own registry of peer connections
        if pc is not None and sessions.loop is not None:
            sessions.loop.call_soon_threadsafe(lambda: asyncio.ensure_future(pc.close()))

    return close


def video_frames(sessions: SessionManager, close_peer: PeerCloser, session_id: str | None) -> Iterator[np.ndarray]:
    session = sessions.get(session_id)
    if session is None or session.state is SessionState.CLOSED:
        return
    webrtc_id = get_current_context().webrtc_id
    session.viewer_attached("video")
    frame = np.zeros((session.pipeline.size[1], session.pipeline.size[0], 3), np.uint8)
    try:
        while (latest := session.pipeline.latest_frame()) is not None:
            frame = latest
            yield frame
        close_peer(webrtc_id)
        while True:  # until the closed connection stops asking
            yield frame
    finally:
        session.viewer_detached("video")


def audio_chunks(sessions: SessionManager, close_peer: PeerCloser,
                 session_id: str | None) -> Iterator[tuple[int, np.ndarray]]:
    session = sessions.get(session_id)
    if session is None or session.state is SessionState.CLOSED:
        return
    webrtc_id = get_current_context().webrtc_id
    session.viewer_attached("audio")
    try:
        for chunk in session.pipeline.audio_chunks():
            yield AUDIO_RATE, chunk
        close_peer(webrtc_id)
        silence = np.zeros(SAMPLES_PER_TICK, np.float32)
        for _ in range(CLOSE_GRACE_TICKS):  # until the closed connection stops asking
            time.sleep(TICK_S)
            yield AUDIO_RATE, silence
    finally:
        session.viewer_detached("audio")
