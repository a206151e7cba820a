"""The per-session media clock: one thread ticks at FPS, takes a frame and the
matching 40 ms of audio from the avatar, removes the green background, and hands
both to the two WebRTC streams (fastrtc's receive mode carries video or audio, not
both, so the page holds two peer connections fed from this one clock).

The video stream polls `latest_frame()` from the event loop (cheap, never blocks);
the audio stream blocks on `audio_chunks()` in fastrtc's executor and is paced by
this clock, so audio latency cannot grow. Time comes from `now` (time.monotonic, or
a fake one in tests), and `step()` runs one tick, so the clock can be driven by hand.
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

import numpy as np

from ..events import EventSink, MediaFailed, SpeakingChanged
from .format import TICK_S, MediaSource
from .keying import remove_green

log = logging.getLogger(__name__)

AUDIO_QUEUE_TICKS = 25  # 1 s: a stalled viewer loses old audio rather than growing latency
# fastrtc's video track takes a frame every TICK_S on its own timer; the clock delays its
# ticks (by at most PHASE_STEP_S each) until a frame is finished FRAME_LEAD_S before the
# take, instead of waiting 0-40 ms (a different wait in every session) while its audio is
# sent. Only later, never earlier: fastrtc holds audio that arrives ahead of its schedule.
FRAME_LEAD_S = 0.006
PHASE_STEP_S = 0.001
PHASE_DEAD_BAND_S = 0.002  # closer than this is locked: jitter must not walk the clock
RECENT_TAKES = 25  # a late event loop only ever makes takes late: the earliest shows the timer
TAKES_KEPT = 128  # and for the stream stats: 5 s at 25 fps, more than their window
LATE_TICK_S = TICK_S / 2  # a tick that begins this much after it was due counts as late
REANCHOR_S = 0.25  # further behind than this (machine stalled): start afresh, don't burst


@dataclass(frozen=True)
class ClockStats:
    frames: int  # ticks run
    late_ticks: int  # began more than LATE_TICK_S after they were due
    phase_error_s: float  # last measured: > 0, a finished frame waits longer than FRAME_LEAD_S for its take
    audio_dropped: int  # 40 ms chunks dropped because no viewer took them in time (or clear())


class MediaClock:
    def __init__(self, source: MediaSource, events: EventSink, video_delay_ticks: int = 0,
                 now: Callable[[], float] = time.monotonic) -> None:
        self._source = source
        self._events = events
        self._now = now
        width, height = source.size
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
        self._takes: deque[float] = deque(maxlen=TAKES_KEPT)  # when the video stream took frames
        self._start = now()  # when tick 0 is due; moved later by the phase lock
        self._index = 0
        self._speaking = False
        self._busy = 0.0  # smoothed seconds a tick takes
        self._late_ticks = 0
        self._phase_error = 0.0
        self._audio_dropped = 0  # by the clock thread (no viewer took them)
        self._audio_cleared = 0  # by clear(), on the event loop: two counters, no lost counts

    @property
    def size(self) -> tuple[int, int]:
        return self._source.size

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._stop.is_set()

    @property
    def next_tick_at(self) -> float:
        return self._start + self._index * TICK_S

    @property
    def stats(self) -> ClockStats:
        return ClockStats(self._index, self._late_ticks, self._phase_error,
                          self._audio_dropped + self._audio_cleared)

    @property
    def audio_queued_s(self) -> float:
        """Audio made and waiting for the viewer to take it."""
        return self._audio.qsize() * TICK_S

    def sent_times(self) -> list[float]:
        """When the video stream took its recent frames (at most TAKES_KEPT), oldest first."""
        return list(self._takes)

    def start(self) -> None:
        self._start = self._now()
        self._thread.start()

    def stop(self) -> None:
        """Idempotent; returns once the clock thread has ended, then lets go of the frame
        buffers at once instead of waiting for the cyclic garbage collector."""
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=2)
        if not self._thread.is_alive():
            self._buffers, self._background = [], None
            self._published.clear()

    def set_background(self, background: np.ndarray | None) -> None:
        """A frame-sized BGR image to composite over, or None to keep the green."""
        if background is not None and background.shape != self._latest.shape:
            raise ValueError(f"background {background.shape} does not match frames {self._latest.shape}")
        self._background = background  # one reference swap: the clock sees old or new, never half

    def clear(self) -> None:
        """Drop audio waiting for the viewer (Interrupt: silence now, not in up to 1 s)."""
        while True:
            try:
                self._audio.get_nowait()
            except queue.Empty:
                return
            self._audio_cleared += 1

    # --- consumers -----------------------------------------------------------------------
    def latest_frame(self) -> np.ndarray | None:
        """The newest finished frame, or None once stopped. Never blocks."""
        if self._stop.is_set():
            return None
        self._takes.append(self._now())
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
        try:
            while not self._stop.is_set():
                delay = self.next_tick_at - self._now()
                if delay > 0:
                    if self._stop.wait(delay):
                        break
                elif delay < -REANCHOR_S:
                    self._start = self._now() - self._index * TICK_S
                self.step()
        except Exception as exc:  # a broken source ends this session, not the app
            log.exception("media clock failed")
            self._stop.set()
            self._events.emit(MediaFailed(exc))

    def step(self) -> None:
        """Run the next tick now: a frame and its audio from the source, published."""
        began = self._now()
        if began - self.next_tick_at > LATE_TICK_S:
            self._late_ticks += 1
        tick = self._source.tick(self._index)
        self._publish_frame(tick.frame, self._index)
        self._publish_audio(tick.audio)
        if tick.speaking != self._speaking:
            self._speaking = tick.speaking
            self._events.emit(SpeakingChanged(tick.speaking, at=began))
        self._busy = 0.9 * self._busy + 0.1 * (self._now() - began)
        self._start += self._phase_step()
        self._index += 1

    def _phase_step(self) -> float:
        """How much later to run the next ticks, towards finishing each frame FRAME_LEAD_S
        before the video stream takes it."""
        takes = list(self._takes)[-RECENT_TAKES:]
        if not takes:
            return 0.0
        start = self._start
        # when in our tick cycle frames are taken: the earliest recent take, around the newest
        newest = (takes[-1] - start) % TICK_S
        take_phase = newest + min(_signed(((t - start) % TICK_S) - newest) for t in takes)
        error = self._phase_error = _signed(take_phase - self._busy - FRAME_LEAD_S)
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
                self._audio_dropped += 1
            self._audio.put_nowait(chunk)


def _signed(phase: float) -> float:
    """A phase difference folded into [-TICK_S/2, TICK_S/2)."""
    return (phase + TICK_S / 2) % TICK_S - TICK_S / 2
