"""What flows from an avatar to the browser, defined once: 25 frames a second, each
with its 40 ms of mono float32 audio at 24 kHz (the offline voices' rate and the
format LiveAvatar's LITE mode takes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

FPS = 25
TICK_S = 1.0 / FPS
AUDIO_RATE = 24_000
SAMPLES_PER_TICK = AUDIO_RATE // FPS


@dataclass
class MediaTick:
    frame: np.ndarray  # uint8 BGR (H, W, 3); may be a view valid until the next tick
    audio: np.ndarray  # float32 mono, SAMPLES_PER_TICK samples at AUDIO_RATE
    speaking: bool


class MediaSource(Protocol):
    """What the media clock takes from an avatar: one frame and its audio per tick."""

    @property
    def size(self) -> tuple[int, int]: ...

    def tick(self, index: int) -> MediaTick: ...
