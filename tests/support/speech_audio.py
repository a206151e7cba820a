"""Speech from our offline voices as a microphone would give it: 16 kHz mono float."""

from __future__ import annotations

import re
from functools import cache

import av
import numpy as np

from avatar_core.media.format import AUDIO_RATE
from avatar_core.providers.local.speech import default_catalog


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    resampler = av.AudioResampler(format="flt", layout="mono", rate=to_rate)
    frame = av.AudioFrame.from_ndarray(audio.reshape(1, -1).astype(np.float32), format="flt", layout="mono")
    frame.sample_rate = from_rate
    parts = [*resampler.resample(frame), *resampler.resample(None)]
    return np.concatenate([p.to_ndarray().reshape(-1) for p in parts])


@cache
def spoken(text: str, voice_id: str = "heart", rate: int = 16_000) -> np.ndarray:
    """`text` said by one of our voices, at `rate`."""
    audio = np.concatenate([s.audio for s in default_catalog().get(voice_id).sentences(text)])
    return audio if rate == AUDIO_RATE else resample(audio, AUDIO_RATE, rate)


def silence(seconds: float, rate: int = 16_000) -> np.ndarray:
    return np.zeros(round(seconds * rate), np.float32)


def word_error_rate(reference: str, heard: str) -> float:
    """Words substituted, dropped or added, per word of `reference` (case and punctuation ignored)."""
    import jiwer

    def plain(text: str) -> str:
        return " ".join(re.sub(r"[^a-z0-9' ]", " ", text.lower()).split())

    return float(jiwer.wer(plain(reference), plain(heard) or "<nothing>"))
