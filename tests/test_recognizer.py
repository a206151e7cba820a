"""Offline speech recognition with the bundled Whisper base model: our voices' words come
back, non-speech gives no text, a full queue says so at once, and a bad model is refused."""

from __future__ import annotations

import asyncio
import re

import numpy as np
import pytest

from avatar_core.voice.recognizer import (
    MAX_WAITING,
    Recognizer,
    RecognizerBusyError,
    RecognizerUnavailableError,
    looks_degenerate,
)
from avatar_core.voice.whisper_model import ModelError, load_whisper
from tests.support.speech_audio import silence, spoken


@pytest.fixture(scope="module")
def recognizer():
    recognizer = Recognizer()
    recognizer.load()  # the two wheels joined, checked against Systran's hash, loaded
    yield recognizer
    recognizer.close()


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()


def turn(text: str, voice: str) -> np.ndarray:
    return np.concatenate([silence(0.2), spoken(text, voice), silence(0.5)])


@pytest.mark.parametrize(("text", "voice"), [
    ("Hello there, could you tell me what the weather is like today?", "heart"),
    ("Please tell me a short story about a dragon.", "heart"),
    ("What is twenty three plus nineteen?", "espeak-uk-female"),
    ("Good morning, how are you doing?", "espeak-us-male"),
])
def test_our_voices_are_recognised_word_for_word(recognizer, text, voice):
    heard = asyncio.run(recognizer.transcribe(turn(text, voice)))
    expected = words(text.replace("twenty three", "23").replace("nineteen", "19"))
    assert words(heard.text) == expected, heard.text
    assert heard.took_s > 0 and abs(heard.seconds - turn(text, voice).size / 16_000) < 1e-6


@pytest.mark.parametrize("name", ["silence", "noise", "a chord"])
def test_what_is_not_speech_gives_no_text(recognizer, name):
    rng = np.random.default_rng(1)
    t = np.arange(2 * 16_000) / 16_000
    audio = {"silence": silence(2.0), "noise": 0.05 * rng.standard_normal(t.size),
             "a chord": sum(0.2 * np.sin(2 * np.pi * f * t) for f in (262, 330, 392))}[name]
    # Whisper alone writes "you" or "I'm" here: its no-speech probability drops them
    assert asyncio.run(recognizer.transcribe(np.asarray(audio, np.float32))).text == ""


def test_a_full_queue_refuses_at_once_and_the_rest_are_heard(recognizer):
    audio = turn("Yes, please.", "heart")

    async def burst() -> list[object]:
        calls = [recognizer.transcribe(audio) for _ in range(1 + MAX_WAITING + 2)]
        return await asyncio.gather(*calls, return_exceptions=True)

    results = asyncio.run(burst())
    refused = [r for r in results if isinstance(r, RecognizerBusyError)]
    heard = [r for r in results if not isinstance(r, BaseException)]
    assert len(refused) == 2 and len(heard) == 1 + MAX_WAITING
    assert all(words(h.text) == ["yes", "please"] for h in heard)  # type: ignore[attr-defined]
    assert "busy" in str(refused[0])
    assert words(asyncio.run(recognizer.transcribe(audio)).text) == ["yes", "please"]  # free again


def test_repeated_phrases_count_as_degenerate():
    assert looks_degenerate("Stop. " * 30)
    assert not looks_degenerate("Hello there, could you tell me what the weather is like today?")


def test_a_model_directory_without_a_model_is_refused(tmp_path):
    with pytest.raises(ModelError, match=r"no model\.bin"):
        load_whisper(str(tmp_path), cpu_threads=1)


def test_a_recognizer_whose_model_cannot_load_says_why_every_time(tmp_path):
    recognizer = Recognizer(model_dir=str(tmp_path))
    try:
        for _ in range(2):  # the second turn gets the same answer, without trying to load again
            with pytest.raises(RecognizerUnavailableError, match=r"not available on this server \(its model could "
                                                                 r"not be loaded; the server's log says why\)\.$"):
                asyncio.run(recognizer.transcribe(silence(1.0)))
    finally:
        recognizer.close()


@pytest.mark.parametrize("gain", [0.5, 0.15])
def test_a_quiet_turn_keeps_its_last_words(recognizer, gain):
    # measured: with the window's features padded with zeros instead of the audio with silence,
    # Whisper base heard "Tell me" (0.5) and "Tell tell" (0.15)
    audio = np.concatenate([silence(0.3), gain * spoken("Tell me a story.", "heart"), silence(0.5)])
    assert words(asyncio.run(recognizer.transcribe(audio)).text) == ["tell", "me", "a", "story"]
