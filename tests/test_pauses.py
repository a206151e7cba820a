"""The pause detector on synthesised audio: our offline voices' speech, silence, noise and
a chord, with exact expectations for which turn events come and when."""

from __future__ import annotations

import numpy as np
import pytest

from avatar_core.voice.pauses import FRAME_S, SAMPLE_RATE, PauseDetector, Pausing, TurnEnded, TurnStarted
from tests.support.speech_audio import silence, spoken

QUESTION = "Hello there, could you tell me what the weather is like today?"
PAUSE_MS = 600


def feed_in_chunks(detector: PauseDetector, audio: np.ndarray, chunk: int = 960) -> list:
    events = []
    for start in range(0, audio.size, chunk):  # 60 ms pieces, as a microphone's frames arrive
        events += detector.feed(audio[start : start + chunk])
    return events


def speech_bounds(audio: np.ndarray, level: float = 0.01) -> tuple[float, float]:
    loud = np.flatnonzero(np.abs(audio) > level)
    return loud[0] / SAMPLE_RATE, loud[-1] / SAMPLE_RATE


@pytest.mark.parametrize("voice", ["heart", "espeak-us-male"])
def test_one_sentence_between_silences_is_one_turn(voice):
    speech = spoken(QUESTION, voice)
    first, last = speech_bounds(speech)
    events = feed_in_chunks(PauseDetector(PAUSE_MS, max_turn_s=15), np.concatenate(
        [silence(1.0), speech, silence(1.5)]))
    assert [type(e) for e in events] == [TurnStarted, TurnEnded]
    started, ended = events
    assert 1.0 + first - 2 * FRAME_S <= started.at_s <= 1.0 + first + 0.2  # within 200 ms of the first word
    assert ended.started_at_s == started.at_s and not ended.cut
    # the turn holds all the speech, 200 ms of pre-roll and the pause that ended it
    expected = (last - first) + 0.2 + PAUSE_MS / 1000
    assert abs(ended.audio.size / SAMPLE_RATE - expected) < 0.25, (ended.audio.size / SAMPLE_RATE, expected)


def test_a_short_gap_stays_in_the_turn_and_a_long_one_ends_it():
    first, second = spoken("I would like to ask you something."), spoken("What time is it now?")
    short = feed_in_chunks(PauseDetector(PAUSE_MS, 15), np.concatenate(
        [silence(0.5), first, silence(0.3), second, silence(1.0)]))
    assert [type(e) for e in short] == [TurnStarted, TurnEnded]
    long = feed_in_chunks(PauseDetector(PAUSE_MS, 15), np.concatenate(
        [silence(0.5), first, silence(1.2), second, silence(1.0)]))
    assert [type(e) for e in long] == [TurnStarted, TurnEnded, TurnStarted, TurnEnded]


@pytest.mark.parametrize("name", ["silence", "quiet noise", "loud noise", "a chord"])
def test_no_turn_from_what_is_not_speech(name):
    rng = np.random.default_rng(7)
    t = np.arange(3 * SAMPLE_RATE) / SAMPLE_RATE
    audio = {"silence": silence(3.0), "quiet noise": 0.05 * rng.standard_normal(t.size),
             "loud noise": 0.3 * rng.standard_normal(t.size),
             "a chord": sum(0.2 * np.sin(2 * np.pi * f * t) for f in (262, 330, 392))}[name]
    detector = PauseDetector(PAUSE_MS, 15)
    assert feed_in_chunks(detector, np.asarray(audio, np.float32)) == []
    assert not detector.in_turn


def test_a_turn_longer_than_the_limit_is_cut_and_the_rest_is_a_new_turn():
    speech = spoken(QUESTION)
    events = feed_in_chunks(PauseDetector(PAUSE_MS, max_turn_s=2.0), np.concatenate(
        [silence(0.5), speech, silence(1.0)]))
    assert [type(e) for e in events][:2] == [TurnStarted, TurnEnded]
    cut = events[1]
    assert cut.cut and abs(cut.audio.size / SAMPLE_RATE - 2.0) <= FRAME_S
    assert [type(e) for e in events[2:]] == [TurnStarted, TurnEnded] and not events[3].cut  # the rest of it


def test_chunk_sizes_do_not_change_the_turns():
    audio = np.concatenate([silence(0.7), spoken(QUESTION), silence(1.0)])
    one_piece = PauseDetector(PAUSE_MS, 15).feed(audio)
    odd_pieces = feed_in_chunks(PauseDetector(PAUSE_MS, 15), audio, chunk=333)
    assert [type(e) for e in one_piece] == [type(e) for e in odd_pieces] == [TurnStarted, TurnEnded]
    assert one_piece[0] == odd_pieces[0]
    assert np.array_equal(one_piece[1].audio, odd_pieces[1].audio)


def test_reset_forgets_a_turn_in_progress():
    detector = PauseDetector(PAUSE_MS, 15)
    assert [type(e) for e in detector.feed(np.concatenate([silence(0.5), spoken(QUESTION)[:SAMPLE_RATE]]))] == \
        [TurnStarted]
    detector.reset()
    assert detector.feed(silence(2.0)) == [] and not detector.in_turn


def test_a_pausing_comes_once_per_quiet_stretch_and_its_audio_is_the_turn_less_the_rest_of_the_pause():
    first, second = spoken("I would like to ask you something."), spoken("What time is it now?")
    detector = PauseDetector(PAUSE_MS, 15, speculate_ms=200)
    events = feed_in_chunks(detector, np.concatenate([silence(0.5), first, silence(0.3), second, silence(1.0)]))
    assert [type(e) for e in events] == [TurnStarted, Pausing, Pausing, TurnEnded]  # the 0.3 s gap, then the end
    early, last, ended = events[1], events[2], events[3]
    assert ended.audio.size - last.audio.size == detector.samples_after_pausing
    assert ended.audio.size - early.audio.size > detector.samples_after_pausing  # the gap's guess is stale
    assert np.array_equal(ended.audio[: last.audio.size], last.audio)
