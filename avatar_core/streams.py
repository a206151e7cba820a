"""The two fastrtc receive-mode generators: video frames and audio chunks of one
session, both fed by that session's media clock.

fastrtc calls the video generator inside the event loop, so it only hands over the
newest finished frame and never blocks; the audio generator runs in fastrtc's
executor and blocks on the clock-paced audio queue.

A stream never just returns: fastrtc 0.0.34 then hands None to the encoder and
leaves the browser's connection open. Instead it closes its own peer connection
and keeps feeding a last frame (or silence) until the connection stops asking.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from fastrtc import VideoStreamHandler
from fastrtc.utils import get_current_context

from .media import AUDIO_RATE, SAMPLES_PER_TICK, TICK_S
from .session import AvatarSession, SessionState
from .sessions import SessionManager

PeerCloser = Callable[[str], None]
CLOSE_GRACE_TICKS = 50  # 2 s for the closed connection to stop pulling
BLANK_SIZE = (640, 360)


class StableVideoHandler(VideoStreamHandler):
    """fastrtc 0.0.34 wraps the shared handler's `callable` again on every offer, so
    after about a thousand streams creating one overflows the stack. Keep the first."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "callable" and "callable" in self.__dict__:
            return
        super().__setattr__(name, value)


def peer_closer(component: Any, sessions: SessionManager) -> PeerCloser:
    """Closes one of `component`'s server-side peer connections, from any thread."""

    def close(webrtc_id: str) -> None:
        pc = component.pcs.get(webrtc_id)  # fastrtc's own registry of peer connections
        if pc is not None and sessions.loop is not None:
            sessions.loop.call_soon_threadsafe(lambda: asyncio.ensure_future(pc.close()))

    return close


def _open_session(sessions: SessionManager, session_id: str | None) -> AvatarSession | None:
    session = sessions.get(session_id)
    return session if session is not None and session.state is not SessionState.CLOSED else None


def video_frames(sessions: SessionManager, close_peer: PeerCloser, session_id: str | None) -> Iterator[np.ndarray]:
    webrtc_id = get_current_context().webrtc_id
    session = _open_session(sessions, session_id)
    width, height = session.pipeline.size if session else BLANK_SIZE
    frame = np.zeros((height, width, 3), np.uint8)
    if session is not None:
        session.viewer_attached("video")
        try:
            while (latest := session.pipeline.latest_frame()) is not None:
                frame = latest
                yield frame
        finally:
            session.viewer_detached("video")
    close_peer(webrtc_id)
    for _ in range(CLOSE_GRACE_TICKS):
        yield frame  # fastrtc paces these; it stops asking once the connection is closed


def audio_chunks(sessions: SessionManager, close_peer: PeerCloser,
                 session_id: str | None) -> Iterator[tuple[int, np.ndarray]]:
    webrtc_id = get_current_context().webrtc_id
    session = _open_session(sessions, session_id)
    if session is not None:
        session.viewer_attached("audio")
        try:
            for chunk in session.pipeline.audio_chunks():
                yield AUDIO_RATE, chunk
        finally:
            session.viewer_detached("audio")
    close_peer(webrtc_id)
    silence = np.zeros(SAMPLES_PER_TICK, np.float32)
    for _ in range(CLOSE_GRACE_TICKS):
        time.sleep(TICK_S)  # this runs in fastrtc's executor: pace it like the clock
        yield AUDIO_RATE, silence
