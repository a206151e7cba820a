"""Idle life and lip movement for the offline avatar, one pose per 40 ms tick.

The mouth's shape comes from the phonemes of the very audio chunk sent with the
frame (visemes.py, carried through the speech buffer with the audio), its jaw from
that chunk's loudness; audio without phoneme timings opens the mouth by loudness
alone. Either way lip movement is tied to what is played.
"""

from __future__ import annotations

import math
import random

import numpy as np

from .face import BLINK_LEVELS, GAZES, MOUTH_LEVELS, Pose
from .mouth_shapes import MouthPose

BLINK_SHAPE = (2, 4, 4, 2, 0)  # eyelid levels over a 200 ms blink
SPEECH_RMS_FOR_FULL_OPEN = 0.16


class MouthFollower:
    """Audio chunk loudness -> how open the mouth is (0 .. 1), quick to open, a little
    slower to close."""

    def __init__(self) -> None:
        self.openness = 0.0

    def update(self, chunk: np.ndarray) -> float:
        rms = float(np.sqrt(np.mean(np.square(chunk)))) if chunk.size else 0.0
        target = min(1.0, rms / SPEECH_RMS_FOR_FULL_OPEN) ** 0.7 if rms > 0.01 else 0.0
        rate = 0.85 if target > self.openness else 0.5
        self.openness += (target - self.openness) * rate
        return self.openness


def loudness_level(openness: float) -> int:
    return min(MOUTH_LEVELS - 1, round(openness * (MOUTH_LEVELS - 1)))


class IdleMotion:
    """Blinks every few seconds, glances aside now and then, sways and breathes."""

    def __init__(self, margin: int, fps: int, seed: int | None = None) -> None:
        self._rng = random.Random(seed)
        self._fps = fps
        self._amplitude = max(1, margin - 1)
        self._blink_at = self._frames(1.0, 4.0)
        self._gaze, self._gaze_until = 0, self._frames(2.0, 5.0)

    def _frames(self, lo: float, hi: float) -> int:
        return int(self._rng.uniform(lo, hi) * self._fps)

    def pose(self, tick: int, mouth_level: int, mouth: MouthPose | None = None) -> Pose:
        blink = 0
        if tick >= self._blink_at:
            step = tick - self._blink_at
            if step < len(BLINK_SHAPE):
                blink = min(BLINK_LEVELS - 1, BLINK_SHAPE[step])
            else:
                self._blink_at = tick + self._frames(2.0, 6.0)
        if tick >= self._gaze_until:
            self._gaze = 0 if self._gaze else self._rng.choice([g for g in GAZES if g])
            self._gaze_until = tick + (self._frames(0.6, 1.5) if self._gaze else self._frames(2.5, 6.0))
        t = tick / self._fps
        dx = round(self._amplitude * math.sin(2 * math.pi * t / 7.0))
        dy = round(0.6 * self._amplitude * math.sin(2 * math.pi * t / 4.2))
        return Pose(mouth_level=mouth_level, mouth=mouth, blink_level=blink, gaze=self._gaze, dx=dx, dy=dy)
