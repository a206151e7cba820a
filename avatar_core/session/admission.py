"""Admission by measured frame rate: a new session only while the running ones keep theirs.

Capacity differs by machine (one 2-core machine held 10 sessions at 24 fps, another 6),
so a fixed MAX_SESSIONS either wastes the machine or lets newcomers drag every stream
below 24 fps. Each running media clock counts the ticks it ran and those it began late;
sampled once a second, the last few seconds say whether the machine keeps up. MAX_SESSIONS
stays the hard ceiling.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..media.clock import ClockStats
from ..media.format import FPS

WINDOW_S = 5.0  # judged over this much recent time
MIN_FPS = 24.0  # the running sessions' mean frame rate must stay at least this
MAX_LATE_SHARE = 0.10  # and at most this share of their ticks may begin late
SETTLE_S = 3.0  # a stream started this recently is not in the measure yet
STRAIN_SHARE = 0.02  # late ticks that show the machine near its limit: then one new stream at a time


@dataclass(frozen=True)
class Sample:
    at: float
    clocks: Mapping[str, ClockStats]  # session id -> its running clock's counters


class Admission:
    def __init__(self, window_s: float = WINDOW_S, min_fps: float = MIN_FPS, max_late_share: float = MAX_LATE_SHARE,
                 settle_s: float = SETTLE_S, now: Callable[[], float] = time.monotonic) -> None:
        self.window_s, self.min_fps, self.max_late_share, self.settle_s = window_s, min_fps, max_late_share, settle_s
        self._now = now
        self._samples: deque[Sample] = deque()
        self._last_start = -float("inf")

    def sample(self, clocks: Mapping[str, ClockStats]) -> None:
        """Once a second: the counters of every running clock."""
        now = self._now()
        self._samples.append(Sample(now, dict(clocks)))
        while len(self._samples) > 2 and now - self._samples[1].at >= self.window_s:
            self._samples.popleft()

    def measure(self) -> tuple[float, float] | None:
        """(mean frame rate, late share) of the sessions running through the whole window;
        None when there are none (or no window yet)."""
        if len(self._samples) < 2:
            return None
        first, last = self._samples[0], self._samples[-1]
        span = last.at - first.at
        both = [(first.clocks[k], last.clocks[k]) for k in last.clocks.keys() & first.clocks.keys()]
        if span <= 0 or not both:
            return None
        ticks = sum(b.frames - a.frames for a, b in both)
        late = sum(b.late_ticks - a.late_ticks for a, b in both)
        return ticks / (span * len(both)), late / ticks if ticks else 0.0

    def refusal(self) -> str | None:
        """Why a new session must wait now (a sentence for the person), or None to admit it."""
        measured = self.measure()
        if measured is None:
            return None  # nothing is streaming: nobody to slow down
        fps, late_share = measured
        if fps < self.min_fps or late_share > self.max_late_share:
            return (f"The server is at capacity: the avatars already streaming run at {fps:.1f} frames a "
                    f"second ({late_share:.0%} of frames late; {FPS} and none is normal), and another would "
                    "slow them down. Try again in a few minutes.")
        if late_share > STRAIN_SHARE and self._now() - self._last_start < self.settle_s:
            return "Another avatar has just started; its load is being measured. Try again in a few seconds."
        return None

    def stream_started(self) -> None:
        """A session's clock began: its load shows in the measure after a while."""
        self._last_start = self._now()
