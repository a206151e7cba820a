"""The stream stats (avatar_core/session/stream_stats.py), fed by a media clock driven by
hand with fake time, as fastrtc's video track would take its frames: frame rate, frame
gaps, late ticks, audio queued and Repeat -> first speech; the CPU meter; the upstream
frame rate and hold; what the page and the API get; and the controller's report."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import numpy as np
import pytest

from avatar_core.events import EventSink, SpeakingChanged
from avatar_core.media.clock import LATE_TICK_S, MediaClock
from avatar_core.media.format import SAMPLES_PER_TICK, TICK_S, MediaTick
from avatar_core.media.frame_history import FrameHistory, UpstreamVideo
from avatar_core.providers.base import Avatar, AvatarService, Choices, Quality
from avatar_core.session.stream_stats import (
    CpuMeter,
    FirstSpeech,
    ProcessStats,
    StatsReport,
    StreamStats,
    frame_pace,
    measure,
)
from tests.support.controllers import started_controller
from tests.support.fake_avatars import BlankAvatar
from tests.support.recording import FakeTime, Recorder

TAKE_AFTER_S = 0.006  # the video stream takes each frame this long after its tick began


class Source:
    """Black frames and silence, speaking during the ticks in `speaking`; with the gauges
    an avatar has (speech waiting in it, and a relayed avatar's upstream)."""

    def __init__(self, speaking: frozenset[int] = frozenset(), queued_audio_s: float | None = None,
                 upstream: UpstreamVideo | None = None) -> None:
        self._speaking, self.queued_audio_s, self._upstream = speaking, queued_audio_s, upstream

    @property
    def size(self) -> tuple[int, int]:
        return 8, 4

    def tick(self, index: int) -> MediaTick:
        return MediaTick(np.zeros((4, 8, 3), np.uint8), np.zeros(SAMPLES_PER_TICK, np.float32),
                         index in self._speaking)

    def upstream_video(self) -> UpstreamVideo | None:
        return self._upstream


class Drive:
    """A clock whose ticks run on time (or `late_s` late) and whose frames are taken
    TAKE_AFTER_S after each tick, unless the take is skipped (the event loop stalled)."""

    def __init__(self, source: Source) -> None:
        self.now = FakeTime()
        self.events = Recorder()
        self.clock = MediaClock(source, self.events, now=self.now)
        self.began: list[float] = []  # when each tick began

    def run(self, ticks: int, take: bool = True, late_s: float = 0.0) -> float:
        """Runs `ticks` ticks; returns the time of the last take (or tick)."""
        for _ in range(ticks):
            due = self.clock.next_tick_at  # read before the tick: it moves the schedule on
            self.now.t = due + late_s
            self.began.append(self.now.t)
            self.clock.step()
            self.now.t = due + late_s + TAKE_AFTER_S
            if take:
                self.clock.latest_frame()
        return self.now.t


def test_the_frame_rate_is_the_takes_a_second_and_injected_stalls_show_in_the_gap_p95():
    source = Source()
    drive = Drive(source)
    end = drive.run(100)  # 4 s of takes every 40 ms
    stats = measure(drive.clock, source, FirstSpeech(), end + 0.02)  # between takes: none on the window's edge
    assert stats.fps == pytest.approx(25.0, abs=0.5)
    assert stats.frame_gap_p95_ms == pytest.approx(40.0, abs=0.5)
    assert stats.frame_gap_max_ms == pytest.approx(40.0, abs=0.5)

    for _ in range(3):  # three times the video stream takes nothing for 4 frames: 200 ms gaps
        drive.run(4, take=False)
        drive.run(8)
    end = drive.run(2)
    stats = measure(drive.clock, source, FirstSpeech(), end + 0.02)
    # the last 2 s: 38 takes, 3 of their 37 gaps 200 ms (8 %): the p95 is a stall's; a mean (55 ms) or
    # a median (40 ms) would not be
    assert stats.frame_gap_p95_ms == pytest.approx(200.0, abs=0.5)
    assert stats.frame_gap_max_ms == pytest.approx(200.0, abs=0.5)
    assert stats.fps == pytest.approx(38 / 2, abs=0.01)


def test_a_stream_that_stops_being_taken_drops_to_zero_frames_a_second():
    source = Source()
    drive = Drive(source)
    end = drive.run(50)
    stats = measure(drive.clock, source, FirstSpeech(), end + 3.0)  # nothing taken for 3 s
    assert stats.fps == 0.0 and stats.frame_gap_p95_ms is None
    assert frame_pace([], end) == (None, None, None)  # never taken: not measured, not 0


def test_a_stream_just_begun_is_measured_over_its_own_time():
    source = Source()
    drive = Drive(source)
    end = drive.run(13)  # 0.5 s: less than the window
    stats = measure(drive.clock, source, FirstSpeech(), end)
    assert stats.fps == pytest.approx(25.0, abs=0.5)  # not 13 frames / 2 s


def test_late_ticks_and_ticks_are_the_clocks_counters():
    source = Source()
    drive = Drive(source)
    drive.run(10)
    drive.run(1, late_s=LATE_TICK_S + 0.002)
    drive.run(5)
    end = drive.run(1, late_s=LATE_TICK_S + 0.002)
    stats = measure(drive.clock, source, FirstSpeech(), end)
    assert (stats.ticks, stats.late_ticks) == (17, 2)


def test_audio_queued_is_the_avatars_speech_plus_the_clocks_queue_for_the_viewer():
    source = Source(queued_audio_s=0.5)
    drive = Drive(source)
    chunks = drive.clock.audio_chunks()
    viewer = threading.Thread(target=lambda: next(chunks), daemon=True)
    viewer.start()  # a viewer listens (and takes one chunk): only then is audio queued for it
    deadline = time.monotonic() + 5
    while drive.clock._audio_listeners == 0 and time.monotonic() < deadline:
        time.sleep(0.001)
    drive.run(1)
    viewer.join(5)
    end = drive.run(3)  # three chunks nobody has taken yet
    stats = measure(drive.clock, source, FirstSpeech(), end)
    assert stats.avatar_audio_ms == pytest.approx(500.0)
    assert stats.clock_audio_ms == pytest.approx(3 * TICK_S * 1000)
    assert stats.audio_queued_ms == pytest.approx(500.0 + 120.0)
    chunks.close()
    drive.clock.stop()


def test_first_speech_is_timed_from_the_ask_to_the_first_speaking_tick_after_it():
    source = Source(speaking=frozenset({10, 11, 12, *range(60, 80)}))
    drive = Drive(source)
    drive.run(55)
    asked_at = drive.now.t + 0.010
    first = FirstSpeech()
    first.asked(asked_at, speaking=False)
    end = drive.run(30)
    # delivered late, as from the loop: the onset at tick 10 was before the ask and answers nothing
    for event in drive.events.events:
        if isinstance(event, SpeakingChanged) and event.speaking:
            first.spoke(event.at)
    stats = measure(drive.clock, source, first, end)
    assert stats.first_speech_ms == pytest.approx((drive.began[60] - asked_at) * 1000)
    assert stats.first_speech_ms == pytest.approx(6 * 40 - 6 - 10, abs=0.5)  # 6 ticks on, less the ask's lag


def test_first_speech_is_not_asked_while_speaking_and_is_cancelled_by_interrupt():
    first = FirstSpeech()
    first.asked(10.0, speaking=True)  # the avatar is already speaking: nothing to time
    first.spoke(10.5)
    assert first.last_s is None
    first.asked(20.0, speaking=False)
    first.cancel()  # Interrupt: no speech is coming
    first.spoke(20.3)
    assert first.last_s is None
    first.asked(30.0, speaking=False)
    first.cancel(29.0)  # another ask's failure leaves this one
    first.spoke(30.25)
    assert first.last_s == pytest.approx(0.25)
    first.spoke(31.0)  # later onsets answer no ask
    assert first.last_s == pytest.approx(0.25)


def test_the_cpu_share_is_cpu_seconds_per_second_measured_at_most_once_a_second():
    now, cpu = FakeTime(), FakeTime()
    meter = CpuMeter(now=now, cpu=cpu)
    now.t += 0.5
    assert meter.share() is None  # no interval has passed yet
    now.t += 0.5
    cpu.t += 0.75
    assert meter.share() == pytest.approx(0.75)
    now.t += 0.4
    cpu.t += 0.4
    assert meter.share() == pytest.approx(0.75)  # every page asks each second: not measured again yet
    now.t += 0.6
    cpu.t += 1.2  # two busy cores
    assert meter.share() == pytest.approx(1.6)


def test_upstream_frame_rate_and_hold_come_from_the_frames_received():
    now = FakeTime()
    frames = FrameHistory(now=now)
    assert frames.measure() == UpstreamVideo(0.0, None)
    for _ in range(16):
        now.t += 1 / 30
        frames.add(np.zeros((4, 8, 3), np.uint8))
    assert frames.measure().hold_s is None  # no tick has taken a frame yet
    frames.frame_from(0.12)
    assert frames.measure().fps == pytest.approx(30.0)
    assert frames.measure().hold_s == pytest.approx(0.12)
    now.t += 1.5  # upstream stopped sending
    assert frames.measure().fps == 0.0


def test_an_avatar_drawn_here_says_nothing_of_upstream_nor_by_default_of_its_queue():
    avatar = BlankAvatar()
    assert avatar.queued_audio_s is None and avatar.upstream_video() is None
    source = Source(upstream=UpstreamVideo(29.5, 0.125))
    drive = Drive(source)
    stats = measure(drive.clock, source, FirstSpeech(), drive.run(5))
    assert (stats.upstream_fps, stats.upstream_hold_ms) == (29.5, 125.0)
    assert stats.avatar_audio_ms is None


def stream(**changes: object) -> StreamStats:
    values: dict[str, object] = dict(streaming=True, fps=24.96, frame_gap_p95_ms=41.23, frame_gap_max_ms=200.0,
                                     ticks=1250, late_ticks=3, avatar_audio_ms=80.0, clock_audio_ms=40.0,
                                     first_speech_ms=182.4, upstream_fps=None, upstream_hold_ms=None)
    return StreamStats(**{**values, **changes})  # type: ignore[arg-type]


def test_the_page_gets_plain_short_lines_and_the_api_json():
    process = ProcessStats(cpu_share=0.853, cores=2, open_sessions=3)
    text = StatsReport(stream(), process).as_text()
    assert text.splitlines() == [
        "Video sent: 25.0 frames/s, frame gap p95 41 ms (max 200 ms)",
        "Late ticks: 3 of 1250",
        "Audio queued: 120 ms (80 ms in the avatar, 40 ms for the viewer)",
        "Repeat/Talk to first speech: 182 ms",
        "Server: CPU 85% of one core (2 cores), 3 open session(s)",
    ]
    relayed = StatsReport(stream(upstream_fps=29.9, upstream_hold_ms=120.0, avatar_audio_ms=None), process)
    assert "Upstream video: 29.9 frames/s, hold 120 ms" in relayed.as_text().splitlines()
    assert "Audio queued: 40 ms (40 ms for the viewer)" in relayed.as_text().splitlines()
    assert StatsReport(None, process).as_text().startswith("No session: click New, then Start.\n")
    assert StatsReport(stream(streaming=False), process).as_text().startswith("Not streaming yet: click Start.\n")

    data = json.loads(json.dumps(StatsReport(stream(), process).as_dict()))
    assert data["process"] == {"cpu_share": 0.853, "cores": 2, "open_sessions": 3}
    assert data["session"]["fps"] == 25.0 and data["session"]["frame_gap_p95_ms"] == 41.2
    assert data["session"]["audio_queued_ms"] == 120.0 and data["session"]["late_ticks"] == 3
    assert json.loads(json.dumps(StatsReport(None, process).as_dict()))["session"] is None


class Queued(BlankAvatar):
    """A blank avatar with speech waiting: 250 ms for avatar ID "a", 750 ms for any other."""

    def __init__(self, avatar_id: str) -> None:
        super().__init__()
        self._queued_s = 0.25 if avatar_id == "a" else 0.75

    @property
    def queued_audio_s(self) -> float:
        return self._queued_s


class QueuedService(AvatarService):
    name, label = "queued", "Queued"

    def initial_choices(self) -> Choices:
        return Choices()

    async def create(self, avatar_id: str, voice_id: str, quality: Quality, events: EventSink) -> Avatar:
        return Queued(avatar_id)


def test_a_browser_gets_its_own_sessions_stats_and_asking_creates_nothing():
    async def body() -> None:
        c = started_controller(service=QueuedService())
        try:
            await c.new_session("mine", "a", "v", "low")
            assert not c.stats("mine").session.streaming  # type: ignore[union-attr]
            await c.start("mine")
            mine = c.stats("mine")
            assert mine.session is not None and mine.session.streaming
            assert mine.session.avatar_audio_ms == pytest.approx(250.0)
            assert mine.process.open_sessions == 1 and mine.process.cores >= 1
            other = c.stats("someone-else")
            assert other.session is None and other.process.open_sessions == 1
            await c.new_session("theirs", "b", "v", "low")  # a second visitor, streaming too
            await c.start("theirs")
            theirs, mine = c.stats("theirs"), c.stats("mine")
            assert theirs.session is not None and theirs.session.avatar_audio_ms == pytest.approx(750.0)
            assert mine.session is not None and mine.session.avatar_audio_ms == pytest.approx(250.0)
            assert mine.process.open_sessions == 2
            await c.close("theirs")
            assert "someone-else" not in c._browsers  # read-only: no browser made for a caller
            await c.close("mine")
            assert c.stats("mine").session is None
        finally:
            await c.sessions.close_all("done")

    asyncio.run(body())
