"""The per-session media clock: one thread ticks at FPS, takes a frame and the
matching 40 ms of audio from the avatar, removes the green background, and hands
both to the two WebRTC streams (fastrtc's receive mode carries video or audio, not
both, so the page holds two peer connections fed from this one clock).

The video stream polls `latest_frame()` from the event loop (cheap, never blocks);
the audio stream blocks on `audio_chunks()` in fastrtc's executor and is paced by
this clock, so audio latency cannot grow.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .keying import remove_green

log = logging.getLogger(__name__)

FPS = 25
TICK_S = 1.0 / FPS
AUDIO_RATE = 24_000
SAMPLES_PER_TICK = AUDIO_RATE // FPS
AUDIO_QUEUE_TICKS = 25  # 1 s: a stalled viewer loses old audio rather than growing latency
# fastrtc's video track takes a frame every TICK_S on its own timer; the clock delays its
# ticks (by at most PHASE_STEP_S each) until a frame is finished FRAME_LEAD_S before the
# take, instead of waiting 0-40 ms (a different wait in every session) while its audio is
# sent. Only later, never earlier: fastrtc holds audio that arrives ahead of its schedule.
FRAME_LEAD_S = 0.006
PHASE_STEP_S = 0.001
PHASE_DEAD_BAND_S = 0.002  # closer than this is locked: jitter must not walk the clock
RECENT_TAKES = 25  # a late event loop only ever makes takes late: the earliest shows the timer


@dataclass
class MediaTick:
    frame: np.ndarray  # uint8 BGR (H, W, 3); may be a view valid until the next tick
    audio: np.ndarray  # float32 mono, SAMPLES_PER_TICK samples at AUDIO_RATE
    speaking: bool


class MediaSource(Protocol):
    """What an avatar provider gives the clock: one frame and its audio per tick."""

    @property
    def size(self) -> tuple[int, int]: ...

    def tick(self, index: int) -> MediaTick: ...


class MediaPipeline:
    def __init__(
        self,
        source: MediaSource,
        video_delay_ticks: int = 0,
        on_speaking: Callable[[bool], None] | None = None,
        on_failure: Callable[[BaseException], None] | None = None,
    ) -> None:
        self._source = source
        width, height = source.size
        self._delay = video_delay_ticks
        # a ring of output frames: the one a viewer is converting is never overwritten
        self._buffers = [np.zeros((height, width, 3), np.uint8) for _ in range(video_delay_ticks + 3)]
        self._published: deque[np.ndarray] = deque(maxlen=video_delay_ticks + 1)
        self._latest: np.ndarray = self._buffers[0]
        self._background: np.ndarray | None = None
        self._audio: queue.Queue[np.ndarray] = queue.Queue(maxsize=AUDIO_QUEUE_TICKS)
        self._audio_listeners = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="media-clock", daemon=True)
        self._on_speaking = on_speaking
        self._on_failure = on_failure
        self._takes: deque[float] = deque(maxlen=RECENT_TAKES)  # when the video stream took frames

    @property
    def size(self) -> tuple[int, int]:
        return self._source.size

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._stop.is_set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Idempotent; returns once the clock thread has ended, then lets go of the frame
        buffers and callbacks at once instead of waiting for the cyclic garbage collector."""
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=2)
        if not self._thread.is_alive():
            self._buffers, self._background = [], None
            self._published.clear()
            self._on_speaking = self._on_failure = None

    def set_background(self, background: np.ndarray | None) -> None:
        """A frame-sized BGR image to composite over, or None to keep the green."""
        if background is not None and background.shape != self._buffers[0].shape:
            raise ValueError(f"background {background.shape} does not match frames {self._buffers[0].shape}")
        self._background = background  # one reference swap: the clock sees old or new, never half

    # --- consumers -----------------------------------------------------------------------
    def latest_frame(self) -> np.ndarray | None:
        """The newest finished frame, or None once stopped. Never blocks."""
        if self._stop.is_set():
            return None
        self._takes.append(time.monotonic())
        return self._latest

    def audio_chunks(self) -> Iterator[np.ndarray]:
        """Blocking iterator of 40 ms chunks, paced by the clock; ends when stopped."""
        with self._lock:
            self._audio_listeners += 1
        try:
            while not self._stop.is_set():
                try:
                    yield self._audio.get(timeout=0.25)
                except queue.Empty:
                    continue
        finally:
            with self._lock:
                self._audio_listeners -= 1

    # --- the clock -----------------------------------------------------------------------
    def _run(self) -> None:
        start = time.monotonic()
        index, was_speaking, busy = 0, False, 0.0
        try:
            while not self._stop.is_set():
                delay = start + index * TICK_S - time.monotonic()
                if delay > 0:
                    if self._stop.wait(delay):
                        break
                elif delay < -0.25:  # far behind (machine stalled): re-anchor, don't burst
                    start = time.monotonic() - index * TICK_S
                began = time.monotonic()
                tick = self._source.tick(index)
                self._publish_frame(tick.frame, index)
                self._publish_audio(tick.audio)
                if tick.speaking != was_speaking and self._on_speaking:
                    self._on_speaking(tick.speaking)
                was_speaking = tick.speaking
                busy = 0.9 * busy + 0.1 * (time.monotonic() - began)
                start += self._phase_step(start, busy)
                index += 1
        except Exception as exc:  # a broken source ends this session, not the app
            log.exception("media clock failed")
            self._stop.set()
            if self._on_failure:
                self._on_failure(exc)

    def _phase_step(self, start: float, busy: float) -> float:
        """How much later to run the next ticks, towards finishing each frame FRAME_LEAD_S
        before the video stream takes it."""
        takes = list(self._takes)
        if not takes:
            return 0.0
        # when in our tick cycle frames are taken: the earliest recent take, around the newest
        newest = (takes[-1] - start) % TICK_S
        take_phase = newest + min(_signed(((t - start) % TICK_S) - newest) for t in takes)
        error = _signed(take_phase - busy - FRAME_LEAD_S)  # > 0: a finished frame waits longer than the lead
        if error > PHASE_DEAD_BAND_S:
            return min(error, PHASE_STEP_S)
        if error < -FRAME_LEAD_S:  # frames finish after the take: go round, later (never earlier)
            return PHASE_STEP_S
        return 0.0

    def _publish_frame(self, frame: np.ndarray, index: int) -> None:
        out = self._buffers[index % len(self._buffers)]
        background = self._background
        if background is None:
            np.copyto(out, frame)
        else:
            remove_green(frame, background, out)
        self._published.append(out)
        self._latest = self._published[0]  # `delay` ticks old once the deque is full

    def _publish_audio(self, chunk: np.ndarray) -> None:
        if not self._audio_listeners:
            return
        try:
            self._audio.put_nowait(chunk)
        except queue.Full:
            with contextlib.suppress(queue.Empty):
                self._audio.get_nowait()
            self._audio.put_nowait(chunk)


def _signed(phase: float) -> float:
    """A phase difference folded into [-TICK_S/2, TICK_S/2)."""
    return (phase + TICK_S / 2) % TICK_S - TICK_S / 2
