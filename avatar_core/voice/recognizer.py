"""Offline speech recognition: one Whisper model (whisper_model.py) for the whole app, run
by a small bounded worker pool so one session's recognition never blocks another's stream,
and a full queue says so at once instead of piling up.

The model is loaded once, at start-up in the warm-up thread (about a second; the first turn
should not wait for it), or on first use if warm-up has not run.

Short windows: faster-whisper's transcribe() always pads the encoder's input to 30 s, most
of the cost for a 1-8 s turn (base: 550 ms of encoder for 30 s, 64 ms for 10 s). Turns are
decoded with CTranslate2 directly on a window of the turn plus a second (at least 10 s:
shorter ones make Whisper repeat itself), beam 5 at temperature 0, the output
length capped; text that still looks degenerate (Whisper's own compression-ratio test) is
decoded again by transcribe(). Turns Whisper judges to hold no speech give no text.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ProviderError
from .pauses import SAMPLE_RATE
from .whisper_model import load_whisper

log = logging.getLogger(__name__)
MAX_WAITING = 3  # turns queued behind the one being recognised; beyond it: busy
MIN_WINDOW_S, MAX_WINDOW_S = 10, 30
BEAM = 5
NO_SPEECH = 0.5  # measured: our voices' turns 0.01-0.10; silence, noise, a chord 0.60-0.76
HOP = 160  # audio samples per mel frame
DEGENERATE_RATIO = 2.4  # Whisper's own: text this compressible is a loop ("Stop. Stop. Stop...")


class RecognizerBusyError(ProviderError):
    def __str__(self) -> str:
        return "Speech recognition is busy with other visitors' turns; say it again in a moment."


class RecognizerUnavailableError(ProviderError):
    """The model could not be loaded (a bad STT_MODEL, a damaged install): said once per turn."""


@dataclass(frozen=True)
class Heard:
    text: str
    seconds: float  # of audio
    took_s: float  # recognition time


class Recognizer:
    def __init__(self, model_dir: str | None = None, cpu_threads: int = 1, workers: int = 1) -> None:
        """`model_dir`: STT_MODEL, or None for the bundled one. One thread per worker leaves
        the other core to the avatar streams (a second thread gained almost nothing)."""
        self._model_dir, self._cpu_threads = model_dir, cpu_threads
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stt")
        self._model: Any = None
        self._tokenizer: Any = None
        self._prompt: list[int] = []
        self._loading = threading.Lock()
        self._failed: str | None = None  # why the model could not be loaded
        self._waiting = 0  # turns submitted and not finished, running ones included (on the event loop only)
        self._capacity = workers + MAX_WAITING

    def load(self) -> None:
        """Load the model if it is not loaded (any thread); RecognizerUnavailableError says why not."""
        with self._loading:
            if self._failed is not None:
                raise RecognizerUnavailableError(self._failed)
            if self._model is None:
                try:
                    self._load()
                except Exception as exc:  # the model files, CTranslate2: either way voice input is off
                    log.error("speech recognition is off: the model could not be loaded (%s: %s)",
                              type(exc).__name__, exc)
                    # the page is told that much; the reason (which may name the server's paths) is logged
                    self._failed = ("Speech recognition is not available on this server (its model could not be "
                                    "loaded; the server's log says why).")
                    raise RecognizerUnavailableError(self._failed) from None

    def _load(self) -> None:
        from faster_whisper.tokenizer import Tokenizer

        began = time.monotonic()
        model = load_whisper(self._model_dir, self._cpu_threads)
        self._tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe",
                                    language="en")
        self._prompt = [*self._tokenizer.sot_sequence, self._tokenizer.no_timestamps]
        self._model = model
        self._short_window(np.zeros(SAMPLE_RATE, np.float32), 1.0)  # the first run is ~4x slower: not a visitor's
        log.info("speech recognition model loaded in %.2f s", time.monotonic() - began)

    @property
    def idle(self) -> bool:
        """Nothing is being recognised or waiting (for guesses, which must not make a turn wait)."""
        return self._waiting == 0

    async def transcribe(self, audio: np.ndarray) -> Heard:
        """The words in `audio` (16 kHz mono float); RecognizerBusyError when the queue is full.
        Cancelled, a turn not started yet is dropped; one already running still counts until
        it ends (the worker is busy with it)."""
        if self._waiting >= self._capacity:
            raise RecognizerBusyError()
        loop = asyncio.get_running_loop()
        job = self._pool.submit(self._transcribe, audio)
        self._waiting += 1
        job.add_done_callback(lambda _: self._call_soon(loop, self._finished))
        return await asyncio.wrap_future(job)

    def _finished(self) -> None:
        self._waiting -= 1

    @staticmethod
    def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed meanwhile (a test's, or shutdown)
            loop.call_soon_threadsafe(callback)

    def _transcribe(self, audio: np.ndarray) -> Heard:
        self.load()
        began = time.monotonic()
        audio = np.asarray(audio, np.float32)
        seconds = audio.size / SAMPLE_RATE
        if seconds >= MAX_WINDOW_S - 1:
            text = self._whole(audio)
        else:
            text, no_speech = self._short_window(audio, seconds)
            if no_speech > NO_SPEECH:
                text = ""  # Whisper says there is no speech: what it wrote is a guess ("you")
            elif looks_degenerate(text):
                text = self._whole(audio)
        return Heard(text, seconds, time.monotonic() - began)

    def _short_window(self, audio: np.ndarray, seconds: float) -> tuple[str, float]:
        """The text, and Whisper's probability that there was no speech at all."""
        import ctranslate2

        frames = 100 * min(MAX_WINDOW_S, max(MIN_WINDOW_S, math.ceil(seconds + 1)))  # 100 mel frames a second
        # the audio is padded with silence, as Whisper pads its 30 s: padding the features with
        # zeros instead (a level, not silence) made it drop a turn's last words ("Tell me a [story]")
        audio = np.pad(audio, (0, max(0, frames * HOP - audio.size)))
        features = self._model.feature_extractor(audio)[:, :frames]
        window = ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None], np.float32))
        result = self._model.model.generate(window, [self._prompt], beam_size=BEAM,
                                            max_length=min(224, 16 + int(8 * seconds)),  # ~3x a fast talker
                                            suppress_blank=True, suppress_tokens=[-1], return_no_speech_prob=True)[0]
        tokens = [t for t in result.sequences_ids[0] if t < self._tokenizer.eot]
        return str(self._tokenizer.decode(tokens)).strip(), float(result.no_speech_prob)

    def _whole(self, audio: np.ndarray) -> str:
        segments, _info = self._model.transcribe(audio, language="en", beam_size=BEAM, without_timestamps=True,
                                                 vad_filter=False, condition_on_previous_text=False, temperature=0.0)
        return " ".join(s.text.strip() for s in segments if s.no_speech_prob <= NO_SPEECH).strip()

    def close(self) -> None:
        """Waiting turns are dropped; one being recognised ends first (a process ending inside
        CTranslate2 aborts)."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def looks_degenerate(text: str) -> bool:
    """Whisper's loop check: text that compresses this well is a phrase repeated."""
    data = text.encode()
    return len(data) / len(zlib.compress(data)) > DEGENERATE_RATIO

