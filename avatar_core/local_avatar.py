"""The built-in offline avatar: a rendered face and offline speech, no key needed."""

from __future__ import annotations

import asyncio
import contextlib

from .audio_buffer import AudioBuffer
from .face import QUALITY_SIZES, FaceRenderer, get_look
from .media import FPS, SAMPLES_PER_TICK, MediaTick
from .motion import IdleMotion, MouthFollower
from .speech import Voice


class UnknownQualityError(ValueError):
    pass


def check_quality(quality: str) -> str:
    if quality not in QUALITY_SIZES:
        valid = ", ".join(f"{q} ({w}x{h})" for q, (w, h) in QUALITY_SIZES.items())
        raise UnknownQualityError(f"Unknown quality {quality!r}. Valid qualities: {valid}.")
    return quality


class LocalAvatar:
    def __init__(self, look_id: str, voice: Voice, quality: str) -> None:
        self._look = get_look(look_id)
        self._quality = check_quality(quality)
        self._voice = voice
        self._renderer = FaceRenderer(look_id, quality)
        self._speech = AudioBuffer()
        self._mouth = MouthFollower()
        self._idle = IdleMotion(self._renderer.sprites.geometry.margin, FPS)
        self._texts: asyncio.Queue[str] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._generation = 0  # bumped by interrupt: synthesis started before it is dropped
        self._closed = False

    @property
    def size(self) -> tuple[int, int]:
        return self._renderer.size

    @property
    def description(self) -> str:
        w, h = self.size
        return f"{self._look.label}, voice {self._voice.label}, {self._quality} {w}x{h}"

    def tick(self, index: int) -> MediaTick:
        audio, speaking = self._speech.pull(SAMPLES_PER_TICK)
        pose = self._idle.pose(index, self._mouth.update(audio))
        return MediaTick(self._renderer.render(pose), audio, speaking)

    async def speak(self, text: str) -> None:
        if self._closed:
            raise RuntimeError("avatar is closed")
        self._texts.put_nowait(text)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._synthesize_queued())

    async def _synthesize_queued(self) -> None:
        while not self._texts.empty():
            text = self._texts.get_nowait()
            generation = self._generation
            sentences = iter(self._voice.sentences(text))
            # one sentence at a time off the event loop: speech starts after the first
            while (audio := await asyncio.to_thread(next, sentences, None)) is not None:
                if generation != self._generation:
                    break
                self._speech.push(audio)

    @property
    def busy(self) -> bool:
        """Speaking, or text waiting to be spoken."""
        pending = self._worker is not None and not self._worker.done()
        return pending or self._speech.pending_samples > 0

    async def interrupt(self) -> None:
        self._generation += 1
        while not self._texts.empty():
            self._texts.get_nowait()
        self._speech.clear()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.interrupt()
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._worker
