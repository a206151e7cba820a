"""The built-in offline avatar: a rendered face and offline speech, no key needed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import numpy as np

from ...errors import SpeechQueueFullError, UserError
from ...events import EventSink, UpstreamMessage
from ...media.audio_buffer import AudioBuffer
from ...media.format import AUDIO_RATE, FPS, SAMPLES_PER_TICK, MediaTick
from ...tasks import TaskOwner
from ..base import Avatar, Quality
from .face import FaceRenderer, get_look
from .motion import IdleMotion, MouthFollower, loudness_level
from .mouth_shapes import REST_SHAPE, MouthPose, mouth_pose
from .speech import Spoken, Voice
from .visemes import VisemeTrack, viseme_track

log = logging.getLogger(__name__)
RESTING = MouthPose(REST_SHAPE)
MAX_QUEUED_TEXTS = 3  # beyond this, speak() refuses instead of piling up audio
MAX_QUEUED_SPEECH_S = 30.0  # synthesised audio waiting to be played: beyond it, synthesis waits
ROOM_CHECK_S = 0.1


class LocalAvatar(Avatar):
    def __init__(self, look_id: str, voice: Voice, quality: Quality, events: EventSink,
                 lips_follow_phonemes: bool = True) -> None:
        self._look = get_look(look_id)
        self._quality = quality
        self._voice = voice
        self._events = events
        self._renderer = FaceRenderer(look_id, quality)
        self._speech = AudioBuffer()
        self._mouth = MouthFollower()
        self._lips_follow_phonemes = lips_follow_phonemes  # False: loudness alone, as before visemes
        self._lips_from_track = False  # the last speech the mouth showed came with its phonemes
        self._idle = IdleMotion(self._renderer.sprites.geometry.margin, FPS)
        self._texts: asyncio.Queue[str] = asyncio.Queue()
        self._tasks = TaskOwner("local-avatar")
        self._worker: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def size(self) -> tuple[int, int]:
        return self._renderer.size

    @property
    def description(self) -> str:
        w, h = self.size
        return f"{self._look.label}, voice {self._voice.label}, {self._quality} {w}x{h}"

    def tick(self, index: int) -> MediaTick:
        pulled = self._speech.pull_marked(SAMPLES_PER_TICK)
        openness = self._mouth.update(pulled.audio)
        shape: MouthPose | None = None
        if isinstance(pulled.mark, VisemeTrack) and pulled.middle_offset is not None:
            shape = mouth_pose(pulled.mark.at(pulled.middle_offset / AUDIO_RATE), openness)
            self._lips_from_track = True
        elif pulled.middle_offset is not None:  # audio without timings: the mouth follows loudness
            self._lips_from_track = False
        elif self._lips_from_track:  # the track's speech has ended (or was interrupted): lips at rest,
            shape = RESTING  # not a loudness mouth still closing from its last level
        pose = self._idle.pose(index, loudness_level(openness), shape)
        return MediaTick(self._renderer.render(pose), pulled.audio, pulled.speaking)

    async def speak(self, text: str) -> None:
        if self._closed:
            raise UserError("The session was closed. Click New to begin again.")
        if self._texts.qsize() >= MAX_QUEUED_TEXTS or self.queued_audio_s >= MAX_QUEUED_SPEECH_S:
            raise SpeechQueueFullError(f"{MAX_QUEUED_TEXTS} messages or {MAX_QUEUED_SPEECH_S:.0f} s of speech are "
                                       "already waiting to be spoken. Wait for the avatar to finish, then send more.")
        self._texts.put_nowait(text)
        if self._worker is None or self._worker.done():
            self._worker = self._tasks.spawn(self._synthesize_queued(), "synthesis")

    def play(self, audio: np.ndarray) -> bool:
        """Speak audio made elsewhere (24 kHz mono float), the mouth following it; False
        (and nothing queued) when MAX_QUEUED_SPEECH_S is waiting already."""
        if self._closed or self.queued_audio_s >= MAX_QUEUED_SPEECH_S:
            return False
        self._speech.push(audio)
        return True

    async def _synthesize_queued(self) -> None:
        while not self._texts.empty():
            text = self._texts.get_nowait()
            try:
                sentences = iter(self._voice.sentences(text))
                # one sentence at a time off the event loop: speech starts after the first
                while (spoken := await asyncio.to_thread(
                        _next_with_track, sentences, self._lips_follow_phonemes)) is not None:
                    while self.queued_audio_s >= MAX_QUEUED_SPEECH_S:  # memory is bounded by duration
                        await asyncio.sleep(ROOM_CHECK_S)
                    self._speech.push(*spoken)
            except Exception as exc:  # one bad message must not silence the ones after it
                log.exception("speech synthesis failed")
                self._events.emit(UpstreamMessage(
                    f"Error: the voice could not say that message ({type(exc).__name__})."))

    @property
    def queued_audio_s(self) -> float:
        """Synthesised speech waiting to be played."""
        return self._speech.pending_samples / AUDIO_RATE

    @property
    def busy(self) -> bool:
        """Speaking, or text waiting to be spoken."""
        pending = self._worker is not None and not self._worker.done()
        return pending or self._speech.pending_samples > 0

    async def interrupt(self) -> None:
        """Silence now: queued text, synthesis in progress (its result is dropped) and audio."""
        while not self._texts.empty():
            self._texts.get_nowait()
        await self._tasks.cancel(self._worker)
        self._speech.clear()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.interrupt()
        await self._tasks.cancel_all()


def _next_with_track(sentences: Iterator[Spoken], with_track: bool) -> tuple[np.ndarray, VisemeTrack | None] | None:
    """The next sentence's audio and mouth-shape track (None: the mouth follows loudness)."""
    spoken = next(sentences, None)
    if spoken is None:
        return None
    if not spoken.phones or not with_track:  # no timings (or none for this sentence)
        return spoken.audio, None
    return spoken.audio, viseme_track(spoken.phones, spoken.audio.size / AUDIO_RATE)
