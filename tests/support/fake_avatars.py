"""A minimal avatar meeting the contract, for tests that need one the real
providers cannot be made to be (failing media, its own LLM...)."""

from __future__ import annotations

import numpy as np

from avatar_core.media.format import SAMPLES_PER_TICK, MediaTick
from avatar_core.providers.base import Avatar


class BlankAvatar(Avatar):
    """Black 64x36 frames and silence; remembers what it was asked to say."""

    def __init__(self, upstream_id: str | None = None) -> None:
        self.upstream_id, self.said, self.closed = upstream_id, [], False

    @property
    def size(self) -> tuple[int, int]:
        return 64, 36

    @property
    def description(self) -> str:
        return f"blank {type(self).__name__}"

    def tick(self, index: int) -> MediaTick:
        return MediaTick(np.zeros((36, 64, 3), np.uint8), np.zeros(SAMPLES_PER_TICK, np.float32), False)

    async def speak(self, text: str) -> None:
        self.said.append(text)

    async def interrupt(self) -> None:
        return None

    async def close(self) -> None:
        self.closed = True
