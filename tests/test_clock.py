"""The media clock driven by hand with fake time: the phase lock, its stats, clear()
and the events it sends. No threads and no sleeping, except the last test."""

from __future__ import annotations

import random
import threading
import time

import numpy as np
import pytest

from avatar_core.events import MediaFailed, SpeakingChanged
from avatar_core.media.clock import (
    AUDIO_QUEUE_TICKS,
    FRAME_LEAD_S,
    LATE_TICK_S,
    PHASE_DEAD_BAND_S,
    PHASE_STEP_S,
    MediaClock,
)
from avatar_core.media.format import SAMPLES_PER_TICK, TICK_S, MediaTick
from tests.support.recording import FakeTime, Recorder

WORK_S = 0.003  # what one tick costs, in fake time (0 in the phase tests: ticks and takes never overlap)
LOCKED = (FRAME_LEAD_S - 1e-9, FRAME_LEAD_S + PHASE_DEAD_BAND_S + PHASE_STEP_S + 1e-9)  # frame ready -> take


class Source:
    """Frames numbered in their first pixel; audio equal to the tick's index; speaking
    during the ticks in `speaking`; each tick costs `work_s` of fake time."""

    def __init__(self, now: FakeTime, speaking: range = range(0), work_s: float = WORK_S) -> None:
        self._now, self._speaking, self._work_s = now, speaking, work_s
        self.fail_at: int | None = None

    @property
    def size(self) -> tuple[int, int]:
        return 8, 4

    def tick(self, index: int) -> MediaTick:
        if index == self.fail_at:
            raise RuntimeError("decoder gone")
        self._now.t += self._work_s
        frame = np.full((4, 8, 3), index % 256, np.uint8)
        return MediaTick(frame, np.full(SAMPLES_PER_TICK, index, np.float32), index in self._speaking)


class Drive:
    """The clock's ticks interleaved with video takes every TICK_S, as fastrtc's track
    timer takes them (`jitter_s`: each take up to that much late, as a busy loop makes them)."""

    def __init__(self, take_offset_s: float, jitter_s: float = 0.0, seed: int = 1) -> None:
        self.now = FakeTime()
        self.clock = MediaClock(Source(self.now, work_s=0.0), Recorder(), now=self.now)
        self._take_at = self.clock.next_tick_at + take_offset_s
        self._jitter_s, self._rng = jitter_s, random.Random(seed)
        self.gaps: list[float] = []  # per take: how long the newest frame had been ready
        self.timer_gaps: list[float] = []  # the same, at the track timer's time (without the jitter)
        self.anchors: list[float] = []  # per tick: when tick 0 would be due now

    @property
    def anchor(self) -> float:
        return self.clock.next_tick_at - self.clock.stats.frames * TICK_S

    def run(self, ticks: int) -> Drive:
        end = self.clock.stats.frames + ticks
        ready = self.now.t
        while self.clock.stats.frames < end:
            if self.clock.next_tick_at <= self._take_at:
                self.now.t = ready = self.clock.next_tick_at
                self.clock.step()
                self.anchors.append(self.anchor)
            else:
                self.now.t = self._take_at + self._rng.uniform(0, self._jitter_s)
                self.clock.latest_frame()
                self.gaps.append(self.now.t - ready)
                self.timer_gaps.append(self._take_at - ready)
                self._take_at += TICK_S
        return self


def test_the_phase_lock_moves_ticks_later_until_frames_are_ready_just_before_the_take():
    drive = Drive(take_offset_s=0.025)
    first_anchor = drive.anchor
    drive.run(200)
    assert drive.gaps[0] == pytest.approx(0.025)  # before: a frame waited 25 ms for its take
    assert all(LOCKED[0] <= gap <= LOCKED[1] for gap in drive.gaps[-50:])
    assert abs(drive.clock.stats.phase_error_s) <= PHASE_DEAD_BAND_S + 1e-9
    steps = np.diff([first_anchor, *drive.anchors])
    assert steps.min() >= 0 and steps.max() <= PHASE_STEP_S + 1e-9  # later only, 1 ms a tick at most


def test_frames_finishing_after_the_take_go_round_later_never_earlier():
    drive = Drive(take_offset_s=0.035)  # the take comes 5 ms before the next tick: frames wait 35 ms
    first_anchor = drive.anchor
    drive.run(300)
    steps = np.diff([first_anchor, *drive.anchors])
    assert steps.min() >= 0  # never earlier, although earlier would be the short way
    assert drive.anchor - first_anchor == pytest.approx(0.035 - FRAME_LEAD_S, abs=PHASE_DEAD_BAND_S + PHASE_STEP_S)
    assert all(LOCKED[0] <= gap <= LOCKED[1] for gap in drive.gaps[-50:])


def test_late_takes_do_not_walk_a_locked_clock():
    drive = Drive(take_offset_s=FRAME_LEAD_S + 0.001, jitter_s=0.008).run(30)
    locked_at = drive.anchor
    drive.run(1000)
    assert abs(drive.anchor - locked_at) <= PHASE_DEAD_BAND_S  # a walk would follow the late takes
    # locked to the timer (the earliest of the recent takes), not to whichever take came last
    earliest_of_recent = 0.0015  # how late the earliest of 25 takes with 0-8 ms jitter may still be
    assert all(LOCKED[0] - earliest_of_recent <= gap <= LOCKED[1] for gap in drive.timer_gaps[-500:])


def test_stats_count_frames_and_late_ticks():
    now = FakeTime()
    clock = MediaClock(Source(now), Recorder(), now=now)
    for index in range(10):
        now.t = clock.next_tick_at + (LATE_TICK_S + 0.001 if index in (3, 7) else 0.0)
        clock.step()
    stats = clock.stats
    assert (stats.frames, stats.late_ticks, stats.audio_dropped) == (10, 2, 0)
    assert clock.latest_frame()[0, 0, 0] == 9  # the newest tick's frame


def test_audio_waits_for_a_viewer_at_most_a_second_and_clear_drops_it():
    now = FakeTime()
    clock = MediaClock(Source(now), Recorder(), now=now)
    chunks = clock.audio_chunks()
    got: list[np.ndarray] = []
    viewer = threading.Thread(target=lambda: got.append(next(chunks)), daemon=True)
    viewer.start()  # the viewer is listening (and takes one chunk)
    deadline = time.monotonic() + 5
    while clock._audio_listeners == 0 and time.monotonic() < deadline:  # audio is only queued for a listener
        time.sleep(0.001)
    clock.step()
    viewer.join(5)
    assert got and got[0][0] == 0
    for _ in range(AUDIO_QUEUE_TICKS + 4):  # nobody takes these
        clock.step()
    assert clock.stats.audio_dropped == 4  # the oldest went: latency stays at most 1 s
    clock.clear()  # Interrupt: what waits is dropped, so the voice stops now
    assert clock.stats.audio_dropped == 4 + AUDIO_QUEUE_TICKS
    clock.step()
    assert next(chunks)[0] == AUDIO_QUEUE_TICKS + 5  # the next chunk is the newest tick's
    chunks.close()
    clock.stop()


def test_speaking_changes_are_sent_once_each():
    now = FakeTime()
    events = Recorder()
    clock = MediaClock(Source(now, speaking=range(3, 6)), events, now=now)
    for _ in range(10):
        clock.step()
    assert events.events == [SpeakingChanged(True, at=0.0), SpeakingChanged(False, at=0.0)]


def test_a_failing_source_stops_the_clock_and_reports_it():
    events = Recorder()
    source = Source(FakeTime())
    source.fail_at = 3
    clock = MediaClock(source, events)  # real time, its own thread
    clock.start()
    deadline = time.monotonic() + 5
    while clock.running and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not clock.running and clock.latest_frame() is None
    assert [type(e) for e in events.events] == [MediaFailed]
    assert str(events.events[0].error) == "decoder gone"  # type: ignore[union-attr]
    clock.stop()
