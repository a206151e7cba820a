"""The two fastrtc receive-mode generators: video frames and audio chunks of one
session, both fed by that session's media clock.

fastrtc calls the video generator inside the event loop, so it only hands over the
newest finished frame and never blocks; the audio generator runs in fastrtc's
executor and blocks on the clock-paced audio queue. Viewers coming and going are
events to the session (events.py), whichever thread they happen on.

A stream never just returns (server/workarounds.py, 3): it closes its own peer
connection and keeps feeding a last frame (or silence) until the connection stops asking.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from fastrtc.utils import get_current_context

from ..events import EventSink, ViewerChanged
from ..providers.base import QUALITY_SIZES
from .clock import MediaClock
from .format import AUDIO_RATE, SAMPLES_PER_TICK, TICK_S

CLOSE_GRACE_TICKS = 50  # 2 s for the closed connection to stop pulling
BLANK_SIZE = QUALITY_SIZES["low"]  # what a stream for no session shows until it closes


@dataclass(frozen=True)
class StreamSource:
    """What a stream needs of an open session."""

    clock: MediaClock
    events: EventSink


FindSource = Callable[[str | None], StreamSource | None]  # session ID -> its media, if open
PeerCloser = Callable[[str], None]


def video_frames(find: FindSource, close_peer: PeerCloser, session_id: str | None) -> Iterator[np.ndarray]:
    webrtc_id = get_current_context().webrtc_id
    source = find(session_id)
    width, height = source.clock.size if source else BLANK_SIZE
    frame = np.zeros((height, width, 3), np.uint8)
    if source is not None:
        source.events.emit(ViewerChanged("video", attached=True))
        try:
            while (latest := source.clock.latest_frame()) is not None:
                frame = latest
                yield frame
        finally:
            source.events.emit(ViewerChanged("video", attached=False))
    close_peer(webrtc_id)
    for _ in range(CLOSE_GRACE_TICKS):
        yield frame  # fastrtc paces these; it stops asking once the connection is closed


def audio_chunks(find: FindSource, close_peer: PeerCloser, session_id: str | None) -> Iterator[tuple[int, np.ndarray]]:
    webrtc_id = get_current_context().webrtc_id
    source = find(session_id)
    if source is not None:
        source.events.emit(ViewerChanged("audio", attached=True))
        try:
            for chunk in source.clock.audio_chunks():
                yield AUDIO_RATE, chunk
        finally:
            source.events.emit(ViewerChanged("audio", attached=False))
    close_peer(webrtc_id)
    silence = np.zeros(SAMPLES_PER_TICK, np.float32)
    for _ in range(CLOSE_GRACE_TICKS):
        time.sleep(TICK_S)  # this runs in fastrtc's executor: pace it like the clock
        yield AUDIO_RATE, silence
