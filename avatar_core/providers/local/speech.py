"""Offline text-to-speech voices: nothing is downloaded at run time.

- hibari-tts's bundled voice "heart" (measured best in ../shared/reference/measurements.md);
- espeak-ng, from the espeakng-loader wheel (library and data inside the package).

Every voice yields mono float32 audio at AUDIO_RATE, one sentence at a time, so
speech can start as soon as the first sentence is ready; with it, when each speech
sound is spoken (from the voice's own timings: hibari's duration predictor, espeak's
phoneme events), for the mouth to follow.
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
from .phonemes import Phone, grouped_marks, shifted, timed_phones


class UnknownVoiceError(UserError):
    pass


@dataclass(frozen=True)
class Spoken:
    """One sentence: mono float32 audio at AUDIO_RATE and, when the voice knows them,
    its phones timed from the audio's first sample."""

    audio: np.ndarray
    phones: list[Phone] | None = None


class Voice(Protocol):
    voice_id: str
    label: str

    def sentences(self, text: str) -> Iterator[Spoken]:
        """One Spoken per sentence, in order."""
        ...


def split_sentences(text: str) -> list[str]:
    from hibari.tts import Hibari  # its splitter keeps "Dr. Smith" and "3.5" whole

    return Hibari.split_sentences(text)


def _tidy(audio: np.ndarray, peak: float = 0.85, threshold: float = 0.01) -> tuple[np.ndarray, int]:
    """Trim leading silence (keeping 10 ms: every ms before the voice is latency) and
    trailing silence (keeping 30 ms), and normalise the peak. Also returns how many
    samples were trimmed from the start (the phones move by as much)."""
    loud = np.flatnonzero(np.abs(audio) > threshold)
    if loud.size == 0:
        return np.zeros(0, np.float32), 0
    lead, tail = int(0.01 * AUDIO_RATE), int(0.03 * AUDIO_RATE)
    start = max(0, int(loud[0]) - lead)
    audio = audio[start : loud[-1] + tail]
    return (audio * (peak / float(np.max(np.abs(audio))))).astype(np.float32), start


def _spoken(audio: np.ndarray, phones: list[Phone] | None) -> Spoken:
    tidy, trimmed = _tidy(audio)
    if phones is not None:
        phones = shifted(phones, -trimmed / AUDIO_RATE, tidy.size / AUDIO_RATE)
    return Spoken(tidy, phones)


DURATIONS_OUTPUT = "/Round_output_0"  # hibari's per-symbol durations, in model frames
MODEL_FRAME_SAMPLES = 600  # 25 ms at hibari's 24 kHz (the durations sum to the audio's length)
# hibari's sounds come this much before its durations place them (its decoder looks
# ahead): measured by lining up loudness with vowels and pauses over 8 sentences, 30 ms
# more than espeak's own sample positions show (bench/lipsync.py prints both)
HIBARI_LEAD_S = 0.03


def _with_durations(model_path: str) -> bytes | None:
    """hibari's model with its duration predictor's result as an extra output (None when
    a model has no such node: that voice's mouth follows loudness)."""
    import onnx

    model = onnx.load(model_path)
    if not any(DURATIONS_OUTPUT in node.output for node in model.graph.node):
        return None
    model.graph.output.append(onnx.helper.make_tensor_value_info(DURATIONS_OUTPUT, onnx.TensorProto.FLOAT, None))
    return model.SerializeToString()


class HibariVoice:
    def __init__(self, voice_id: str, label: str, hibari_voice: str) -> None:
        self.voice_id, self.label, self._hibari_voice = voice_id, label, hibari_voice
        self._lock = threading.Lock()
        self._tts = None
        self._session = None  # the model hibari runs, with the durations output when it has them
        self._timed = False

    def _engine(self):
        if self._tts is None:
            import onnxruntime as ort
            from hibari import Hibari
            from hibari.voices import voice_path

            # download_missing=False: a voice that is not in the wheel fails, never fetches
            path = voice_path(self._hibari_voice, False)
            tts = Hibari(voice=self._hibari_voice, model=path)  # its G2P, vocabulary and session
            timed_model = _with_durations(path)
            self._session = tts.sess
            if timed_model is not None:  # the same options hibari gives its own session
                options = ort.SessionOptions()
                options.intra_op_num_threads = options.inter_op_num_threads = 1
                options.log_severity_level = 3
                self._session = ort.InferenceSession(timed_model, options, providers=["CPUExecutionProvider"])
                self._timed = True
            self._tts = tts
        return self._tts, self._session

    def _synthesize(self, sentence: str) -> tuple[np.ndarray, list[Phone] | None]:
        from hibari import dsp

        tts, session = self._engine()
        audio: list[np.ndarray] = []
        phones: list[Phone] | None = [] if self._timed else None
        offset_s = 0.0
        for chunk in tts.phonemize(sentence):  # a very long sentence comes in clauses
            symbols = ["", *[c for c in chunk if c in tts.vocab], ""]  # the model's pads are pauses
            ids = tts.ids(chunk)
            if len(ids) < 3:
                continue
            out = session.run(None, {"ids": np.asarray([ids], np.int64), "speed": np.asarray([1.0], np.float32)})
            wav = dsp.synth(*(o[0] for o in out[:6]), np.random.default_rng())
            if phones is not None:
                frames = [float(d) * MODEL_FRAME_SAMPLES / AUDIO_RATE for d in np.ravel(out[6])]
                grouped, seconds = grouped_marks(symbols, frames)
                bounds = offset_s - HIBARI_LEAD_S + np.concatenate([[0.0], np.cumsum(seconds)])
                phones += timed_phones(grouped, bounds[:-1].tolist(), float(bounds[-1]))
            offset_s += wav.size / AUDIO_RATE
            audio.append(wav)
        return (np.concatenate(audio) if audio else np.zeros(0, np.float32)), phones

    def sentences(self, text: str) -> Iterator[Spoken]:
        for sentence in split_sentences(text):
            with self._lock:  # the G2P keeps state; one synthesis at a time per voice
                audio, phones = self._synthesize(sentence)
            spoken = _spoken(audio, phones)
            if spoken.audio.size:
                yield spoken


class _EspeakEvent(ctypes.Structure):
    """espeak-ng's espeak_EVENT (speak_lib.h); `name` is the id union read as its string."""

    _fields_ = [
        ("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
        ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p), ("name", ctypes.c_char * 8),
    ]


class _EspeakLibrary:
    """espeak-ng through ctypes. The library is process-global, so calls are serialised."""

    SYNCHRONOUS = 2
    PHONEME_EVENTS, PHONEME_IPA = 1, 2  # espeak_Initialize options: phoneme events, named in IPA
    EVENT_LIST_TERMINATED, EVENT_PHONEME = 0, 7
    RATE, PITCH = 1, 3

    def __init__(self) -> None:
        import espeakng_loader

        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        self.lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        data = espeakng_loader.get_data_path().encode()
        options = self.PHONEME_EVENTS | self.PHONEME_IPA
        self.sample_rate = self.lib.espeak_Initialize(self.SYNCHRONOUS, 0, data, options)
        if self.sample_rate <= 0:
            raise RuntimeError("espeak-ng failed to initialise from espeakng-loader's data")
        self.lock = threading.Lock()
        self._chunks: list[np.ndarray] = []
        self._phonemes: list[tuple[str, int]] = []  # (IPA name, sample where it starts)
        callback_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                         ctypes.POINTER(_EspeakEvent))
        self._callback = callback_type(self._collect)  # kept alive as long as the library
        self.lib.espeak_SetSynthCallback(self._callback)
        self.lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]

    def _collect(self, samples, count, events) -> int:
        if count > 0:
            self._chunks.append(np.ctypeslib.as_array(samples, shape=(count,)).copy())
        i = 0
        while events and events[i].type != self.EVENT_LIST_TERMINATED:
            if events[i].type == self.EVENT_PHONEME:
                name = events[i].name.decode("utf-8", "replace")  # "" is a pause
                # `sample` (speak_lib.h: "internal use"), the exact start; audio_position is
                # rounded to ms (tests/test_lipsync.py checks the events cover the audio)
                self._phonemes.append((name, events[i].sample))
            i += 1
        return 0

    def synthesize(self, text: str, voice: str, rate_wpm: int, pitch: int) -> tuple[np.ndarray, list[Phone]]:
        """Audio at `sample_rate` and its phones."""
        with self.lock:
            self._chunks, self._phonemes = [], []
            self.lib.espeak_SetVoiceByName(voice.encode())
            self.lib.espeak_SetParameter(self.RATE, rate_wpm, 0)
            self.lib.espeak_SetParameter(self.PITCH, pitch, 0)
            data = text.encode("utf-8") + b"\0"
            # position type 1 = characters, flag 1 = UTF-8 text
            self.lib.espeak_Synth(data, len(data), 0, 1, 0, 1, None, None)
            chunks, self._chunks = self._chunks, []
            phonemes, self._phonemes = self._phonemes, []
        pcm = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
        names = [name for name, _ in phonemes]
        starts = [sample / self.sample_rate for _, sample in phonemes]
        return pcm.astype(np.float32) / 32768.0, timed_phones(names, starts, pcm.size / self.sample_rate)


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

    def sentences(self, text: str) -> Iterator[Spoken]:
        import soxr

        lib = _espeak()
        for sentence in split_sentences(text):
            audio, phones = lib.synthesize(sentence, self._voice, self._rate, self._pitch)
            # soxr's resampler compensates its own delay: the phones' times stay true
            spoken = _spoken(soxr.resample(audio, lib.sample_rate, AUDIO_RATE).astype(np.float32), phones)
            if spoken.audio.size:
                yield spoken


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
