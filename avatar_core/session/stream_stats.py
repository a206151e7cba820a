"""Live stream stats, per session and for the process: what someone debugging a slow
stream needs (is the video sent at its rate, evenly? is the clock late? how much audio
waits? how long from Repeat/Talk to the first speech? what does upstream deliver? how
busy is the server?).

Computed only when asked (the page's refresh, once a second, or the `stats` API), from
what the parts keep anyway (the clock's bounded take times and counters, the avatar's
queues, a relay's last hold): per frame nothing is added but that one float.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from ..media.clock import MediaClock
from ..media.frame_history import UpstreamVideo

WINDOW_S = 2.0  # the frame rate and the frame gaps are measured over this much recent time
CPU_SAMPLE_S = 1.0  # the CPU share is measured again at most this often (every open page asks)


class AvatarGauges(Protocol):
    """What the stats read of an avatar (providers/base.py's Avatar has both)."""

    @property
    def queued_audio_s(self) -> float | None: ...

    def upstream_video(self) -> UpstreamVideo | None: ...


@dataclass(frozen=True)
class StreamStats:
    streaming: bool  # the media clock runs (Start was clicked)
    fps: float | None  # frames the video stream took a second (None: it has taken none)
    frame_gap_p95_ms: float | None  # between consecutive takes, over WINDOW_S
    frame_gap_max_ms: float | None
    ticks: int  # run by the media clock
    late_ticks: int  # of those, begun more than half a tick late
    avatar_audio_ms: float | None  # speech waiting in the avatar (None: the avatar cannot tell)
    clock_audio_ms: float  # made and waiting for the viewer to take it
    first_speech_ms: float | None  # the last Repeat/Talk measured -> the first tick whose audio is speech
    upstream_fps: float | None  # relayed avatars: frames arriving from upstream a second
    upstream_hold_ms: float | None  # relayed avatars: how far back a tick takes its frame (lip sync)

    @property
    def audio_queued_ms(self) -> float:
        return (self.avatar_audio_ms or 0.0) + self.clock_audio_ms


@dataclass(frozen=True)
class ProcessStats:
    cpu_share: float | None  # CPU seconds the process used per second lately (1.0: one core busy)
    cores: int
    open_sessions: int


@dataclass(frozen=True)
class StatsReport:
    """One browser's own session (None without one) and the process: nothing of other visitors."""

    session: StreamStats | None
    process: ProcessStats

    def as_dict(self) -> dict[str, Any]:
        """For the `stats` API (JSON): numbers rounded to what is meaningful."""
        session = None
        if self.session is not None:
            session = {**asdict(self.session), "audio_queued_ms": self.session.audio_queued_ms}
        return _rounded({"session": session, "process": asdict(self.process)})

    def as_text(self) -> str:
        """For the page: plain text, a few short lines."""
        p = self.process
        cpu = "not measured yet" if p.cpu_share is None else f"{p.cpu_share:.0%} of one core"
        server = f"Server: CPU {cpu} ({p.cores} cores), {p.open_sessions} open session(s)"
        s = self.session
        if s is None:
            return f"No session: click New, then Start.\n{server}"
        if not s.streaming:
            return f"Not streaming yet: click Start.\n{server}"
        lines = [
            "Video sent: " + ("no frames yet" if s.fps is None else f"{s.fps:.1f} frames/s")
            + ("" if s.frame_gap_p95_ms is None else
               f", frame gap p95 {s.frame_gap_p95_ms:.0f} ms (max {s.frame_gap_max_ms or 0:.0f} ms)"),
            f"Late ticks: {s.late_ticks} of {s.ticks}",
            f"Audio queued: {s.audio_queued_ms:.0f} ms ("
            + ("" if s.avatar_audio_ms is None else f"{s.avatar_audio_ms:.0f} ms in the avatar, ")
            + f"{s.clock_audio_ms:.0f} ms for the viewer)",
            "Repeat/Talk to first speech: "
            + ("not measured yet" if s.first_speech_ms is None else f"{s.first_speech_ms:.0f} ms"),
        ]
        if s.upstream_fps is not None:
            hold = "" if s.upstream_hold_ms is None else f", hold {s.upstream_hold_ms:.0f} ms"
            lines.append(f"Upstream video: {s.upstream_fps:.1f} frames/s{hold}")
        return "\n".join([*lines, server])


class FirstSpeech:
    """From Repeat/Talk being accepted to the first tick whose audio is speech. Only asked
    while the avatar is quiet: speech already going on would answer nothing about it."""

    def __init__(self) -> None:
        self._asked_at: float | None = None
        self.last_s: float | None = None

    def asked(self, at: float, speaking: bool) -> None:
        if not speaking:
            self._asked_at = at  # the newest: an older ask that never led to speech is dropped

    def spoke(self, at: float) -> None:
        """Speech began on the tick that began `at`; an onset from before the ask (its event
        was on its way) does not answer it."""
        if self._asked_at is not None and at >= self._asked_at:
            self.last_s = at - self._asked_at
            self._asked_at = None

    def cancel(self, at: float | None = None) -> None:
        """No speech is coming (Interrupt; or the ask made `at` failed)."""
        if at is None or self._asked_at == at:
            self._asked_at = None


def frame_pace(sent: list[float], now: float, window_s: float = WINDOW_S
               ) -> tuple[float | None, float | None, float | None]:
    """(frames a second, p95 gap ms, max gap ms) of the takes `sent` (oldest first) over
    the last `window_s`; the rate over less when the takes began more recently."""
    if not sent:
        return None, None, None
    recent = [t for t in sent if now - window_s < t <= now]
    if sent[0] <= now - window_s:  # the takes kept cover the whole window
        fps = len(recent) / window_s
    else:
        fps = (len(recent) - 1) / (now - recent[0]) if len(recent) > 1 and now > recent[0] else 0.0
    if len(recent) < 2:
        return fps, None, None
    gaps_ms = np.diff(recent) * 1000
    return fps, float(np.percentile(gaps_ms, 95)), float(gaps_ms.max())


def measure(clock: MediaClock, avatar: AvatarGauges, first_speech: FirstSpeech, now: float) -> StreamStats:
    """One session's stats now (`now` on the clock's time)."""
    fps, p95, longest = frame_pace(clock.sent_times(), now)
    counters = clock.stats
    queued = avatar.queued_audio_s
    upstream = avatar.upstream_video()
    hold = upstream.hold_s if upstream is not None else None
    return StreamStats(
        streaming=clock.running, fps=fps, frame_gap_p95_ms=p95, frame_gap_max_ms=longest,
        ticks=counters.frames, late_ticks=counters.late_ticks,
        avatar_audio_ms=None if queued is None else queued * 1000, clock_audio_ms=clock.audio_queued_s * 1000,
        first_speech_ms=None if first_speech.last_s is None else first_speech.last_s * 1000,
        upstream_fps=upstream.fps if upstream is not None else None,
        upstream_hold_ms=None if hold is None else hold * 1000)


def process_cpu_s() -> float:
    """CPU seconds this process has used, all its threads."""
    times = os.times()
    return times.user + times.system


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class CpuMeter:
    """The process's CPU share over the last interval of at least `min_interval_s`; every
    page asks each second, so it is measured again only once that much time has passed."""

    def __init__(self, now: Callable[[], float] = time.monotonic, cpu: Callable[[], float] = process_cpu_s,
                 min_interval_s: float = CPU_SAMPLE_S) -> None:
        self._now, self._cpu, self._min_interval_s = now, cpu, min_interval_s
        self._at, self._cpu_at = now(), cpu()
        self._share: float | None = None

    def share(self) -> float | None:
        """None until the first interval has passed."""
        now = self._now()
        if now - self._at >= self._min_interval_s:
            cpu = self._cpu()
            self._share = max(0.0, cpu - self._cpu_at) / (now - self._at)
            self._at, self._cpu_at = now, cpu
        return self._share


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3) if abs(value) < 10 else round(value, 1)
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    return value
