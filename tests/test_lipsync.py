"""Lips that say the words: phone timings from both voices, the viseme track, the
mouth shapes, and the track carried with its audio through the speech buffer."""

import asyncio

import numpy as np
import pytest

from avatar_core.media.audio_buffer import AudioBuffer
from avatar_core.media.format import AUDIO_RATE, SAMPLES_PER_TICK, TICK_S
from avatar_core.providers.local.avatar import LocalAvatar
from avatar_core.providers.local.face import QUALITY_SIZES, FaceRenderer, Pose, face_sprites
from avatar_core.providers.local.mouth_shapes import (
    CLOSED_SHAPE,
    REST_SHAPE,
    SHAPE_INDEX,
    SHAPES,
    MouthPose,
    mouth_pose,
)
from avatar_core.providers.local.phonemes import SILENCE, grouped_marks, timed_phones, to_arpabet
from avatar_core.providers.local.speech import HIBARI_LEAD_S, HibariVoice, Spoken, default_catalog
from avatar_core.providers.local.visemes import VisemeTrack, viseme_track
from tests.support.mouth_reading import MouthReader
from tests.support.recording import Recorder

CATALOG = default_catalog()
SENTENCE = "Bob moved the map, while you wait."
# the CMU dictionary's pronunciation, stress dropped: what every voice must say, in order
SENTENCE_PHONEMES = ["B", "AA", "B", "M", "UW", "V", "D", "DH", "AH", "M", "AE", "P",
                     "W", "AY", "L", "Y", "UW", "W", "EY", "T"]
LIPS_CLOSED = {"B", "M", "P"}
VOWELS = {"AA", "UW", "AH", "AE", "AY", "EY"}


def test_ipa_symbols_map_to_arpabet():
    assert to_arpabet("ˈaɪ") == ["AY"]  # espeak's stressed diphthong
    assert to_arpabet("I") == ["AY"] and to_arpabet("A") == ["EY"]  # hibari's one-letter diphthongs
    assert to_arpabet("tʃ") == ["CH"] and to_arpabet("uː") == ["UW"]
    assert to_arpabet("") == [SILENCE] and to_arpabet(" ") == [SILENCE] and to_arpabet(",") == [SILENCE]
    assert to_arpabet("ˈ") == []  # a mark alone has no mouth


def test_marks_join_their_sounds_and_lengthen_them():
    symbols, durations = grouped_marks(["m", "ˈ", "ʌ", "ð", "ː"], [2, 1, 3, 2, 1])
    assert symbols == ["m", "ˈʌ", "ðː"] and durations == [2, 4, 3]
    phones = timed_phones(["", "b", "ˈɑ", "?", "b"], [0.0, 0.1, 0.2, 0.3, 0.4], 0.5)
    # "?" is a pause; an unknown letter would lengthen the sound before it
    assert [(p.phoneme, p.start_s, p.end_s) for p in phones] == [
        (SILENCE, 0.0, 0.1), ("B", 0.1, 0.2), ("AA", 0.2, 0.3), (SILENCE, 0.3, 0.4), ("B", 0.4, 0.5)]
    assert [p.phoneme for p in timed_phones(["b", "ɑ", "ʬ"], [0.0, 0.1, 0.2], 0.3)] == ["B", "AA"]


def test_espeak_events_cover_its_audio():
    from avatar_core.providers.local.speech import _espeak

    audio, phones = _espeak().synthesize(SENTENCE, "en-us", 160, 40)  # before resampling and trimming
    # the last event (the closing pause) starts within a tick of the audio's end: events and
    # samples are counted alike (not ms against samples, not another rate)
    assert 0 <= audio.size / _espeak().sample_rate - phones[-1].start_s <= TICK_S


def test_hibari_durations_sum_to_its_audio():
    voice = HibariVoice("heart", "Heart", "heart")
    audio, phones = voice._synthesize(SENTENCE)  # before the lead-in is trimmed
    assert phones is not None
    # the model's 25 ms frames, exactly, moved by the lead its decoder has
    assert phones[0].start_s == -HIBARI_LEAD_S
    assert abs((phones[-1].end_s + HIBARI_LEAD_S) * AUDIO_RATE - audio.size) < 1


@pytest.mark.parametrize("voice_id", list(CATALOG.voices))
def test_each_voice_times_its_phonemes_in_order_over_its_audio(voice_id):
    [spoken] = CATALOG.get(voice_id).sentences(SENTENCE)
    assert spoken.phones is not None
    assert [p.phoneme for p in spoken.phones if p.phoneme != SILENCE] == SENTENCE_PHONEMES
    starts = [p.start_s for p in spoken.phones]
    assert starts == sorted(starts)
    assert all(a.end_s == b.start_s for a, b in zip(spoken.phones, spoken.phones[1:], strict=False))  # no gaps

    # the timings fit the sound: quiet in "p" and the comma's pause, loud in the vowels
    def rms_mid(phone) -> float:
        mid, half = (phone.start_s + phone.end_s) / 2, min(0.015, (phone.end_s - phone.start_s) / 2)
        part = spoken.audio[int((mid - half) * AUDIO_RATE) : int((mid + half) * AUDIO_RATE) + 1]
        return float(np.sqrt(np.mean(part**2)))

    [p] = [p for p in spoken.phones if p.phoneme == "P"]
    [pause] = [p for p in spoken.phones[1:-1] if p.phoneme == SILENCE and p.end_s - p.start_s > 0.1]
    vowels = np.median([rms_mid(p) for p in spoken.phones if p.phoneme in VOWELS])
    assert rms_mid(p) < 0.3 * vowels and rms_mid(pause) < 0.3 * vowels, (rms_mid(p), rms_mid(pause), vowels)
    # the first sound starts where the audio does (the trimmed lead-in moved the phones)
    onset = np.flatnonzero(np.abs(spoken.audio) > 0.05)[0] / AUDIO_RATE
    first = next(p for p in spoken.phones if p.phoneme != SILENCE)
    assert abs(first.start_s - onset) <= TICK_S, (first, onset)


@pytest.mark.parametrize("voice_id", list(CATALOG.voices))
def test_lips_close_on_m_b_p_and_round_on_oo(voice_id):
    [spoken] = CATALOG.get(voice_id).sentences(SENTENCE)
    assert spoken.phones is not None
    track = viseme_track(spoken.phones, spoken.audio.size / AUDIO_RATE)

    def shape_at(phone) -> int:
        return mouth_pose(track.at((phone.start_s + phone.end_s) / 2), 1.0).shape

    closed = [shape_at(p) for p in spoken.phones if p.phoneme in LIPS_CLOSED]
    assert closed == [CLOSED_SHAPE] * len(closed) and len(closed) == 5
    assert shape_at(next(p for p in spoken.phones if p.phoneme == "UW")) == SHAPE_INDEX["oo"]  # moved
    assert shape_at(next(p for p in spoken.phones if p.phoneme == "AA")) == SHAPE_INDEX["aa"]


@pytest.mark.parametrize("quality", list(QUALITY_SIZES))
def test_every_shape_is_drawn_distinctly_and_only_m_b_p_seals_the_lips(quality):
    for look in ("ava", "leo"):
        sprites = face_sprites(look, quality)
        loudest = [levels[-1].astype(np.int32) for levels in sprites.shapes]
        assert len(loudest) >= 9
        for i in range(len(loudest)):
            for j in range(i + 1, len(loudest)):
                differ = np.mean(np.abs(loudest[i] - loudest[j]).sum(axis=2) > 60)
                assert differ > 0.02, (look, SHAPES[i].name, SHAPES[j].name, differ)

        def dark(patch: np.ndarray) -> int:  # pixels of the mouth's dark inside (RGB 70, 22, 28)
            return int(np.sum(np.abs(patch.astype(np.int32) - (28, 22, 70)).sum(axis=2) < 30))

        for k in (CLOSED_SHAPE, REST_SHAPE):
            assert dark(sprites.shapes[k][-1]) == 0, SHAPES[k].name
        for name in ("aa", "e", "o", "oo", "w", "k g", "r"):
            assert dark(sprites.shapes[SHAPE_INDEX[name]][-1]) > 0, name
        # loudness opens the jaw wider within a shape
        aa = sprites.shapes[SHAPE_INDEX["aa"]]
        assert dark(aa[0]) < dark(aa[-1])


def test_a_blend_lies_between_its_two_shapes_closer_to_the_first():
    renderer = FaceRenderer("ava", "low")
    rows, cols = renderer.sprites.geometry.roi("mouth")
    m = renderer.sprites.geometry.margin

    def mouth_of(pose: Pose) -> np.ndarray:
        return renderer.render(pose)[rows.start - m : rows.stop - m, cols.start - m : cols.stop - m].astype(int)

    aa, closed = mouth_of(Pose(mouth=MouthPose(SHAPE_INDEX["aa"]))), mouth_of(Pose(mouth=MouthPose(CLOSED_SHAPE)))
    blend = mouth_of(Pose(mouth=MouthPose(SHAPE_INDEX["aa"], toward=CLOSED_SHAPE, blend_step=8)))
    to_aa, to_closed = np.abs(blend - aa).mean(), np.abs(blend - closed).mean()
    assert 0 < to_aa < to_closed


def test_a_mark_leaves_the_buffer_with_its_own_audio_and_clear_drops_it():
    buffer = AudioBuffer()
    buffer.push(np.ones(SAMPLES_PER_TICK + 100, np.float32), mark="first")
    buffer.push(np.ones(3 * SAMPLES_PER_TICK, np.float32), mark="second")
    one = buffer.pull_marked(SAMPLES_PER_TICK)
    assert one.mark == "first" and one.middle_offset == SAMPLES_PER_TICK // 2
    two = buffer.pull_marked(SAMPLES_PER_TICK)  # 100 samples of "first", its middle in "second"
    assert two.mark == "second" and two.middle_offset == SAMPLES_PER_TICK // 2 - 100
    buffer.clear()
    empty = buffer.pull_marked(SAMPLES_PER_TICK)
    assert empty.mark is None and empty.middle_offset is None and not empty.speaking
    buffer.push(np.ones(SAMPLES_PER_TICK // 4, np.float32), mark="short")  # its middle sample is padding
    short = buffer.pull_marked(SAMPLES_PER_TICK)
    assert short.speaking and short.mark is None and short.middle_offset is None


READER = MouthReader("ava", "low")
READER_WITH_LOUDNESS = MouthReader("ava", "low", loudness=True)


def _shape_shown(frame: np.ndarray, loudness: bool = False) -> str:
    """The shape the frame's mouth shows (with `loudness`, maybe one of the old mouth's openings)."""
    reader = READER_WITH_LOUDNESS if loudness else READER
    return reader.read(reader.crop(frame)).shape


def test_the_avatar_shows_the_shape_of_the_audio_it_sends_and_interrupt_clears_both():
    async def run() -> None:
        avatar = LocalAvatar("ava", CATALOG.get("espeak-us-male"), "low", Recorder())
        [spoken] = CATALOG.get("espeak-us-male").sentences(SENTENCE)
        assert spoken.phones is not None
        expected_track = viseme_track(spoken.phones, spoken.audio.size / AUDIO_RATE)
        await avatar.speak(SENTENCE)
        while avatar.queued_audio_s == 0:
            await asyncio.sleep(0.01)
        shown, expected = [], []
        for index in range(20):
            tick = avatar.tick(index)
            assert tick.speaking
            shown.append(_shape_shown(tick.frame))
            expected.append(SHAPES[mouth_pose(expected_track.at((index + 0.5) * TICK_S), 1.0).shape].name)
        assert shown == expected  # espeak is deterministic: the same phones, the same ticks
        assert "m b p" in shown and "oo" in shown
        await avatar.interrupt()
        after = []
        for index in range(20, 24):  # each frame is a view valid until the next tick: compare at once
            tick = avatar.tick(index)
            after.append((tick.speaking, _shape_shown(tick.frame, loudness=True)))
        assert not any(speaking for speaking, _ in after)  # the audio went with its shapes
        # nothing of the dropped sentence: the lips rest at once (not a loudness mouth closing)
        assert [name for _, name in after] == ["rest"] * 4
        await avatar.close()

    asyncio.run(run())


def test_queued_sentences_keep_their_shapes_in_step_across_the_boundary():
    async def run() -> None:
        avatar = LocalAvatar("ava", CATALOG.get("espeak-us-male"), "low", Recorder())
        await avatar.speak("Bob moved the map. My mother bought a blue boot.")
        while len(avatar._speech._parts) < 2:  # both sentences synthesised and queued
            await asyncio.sleep(0.01)
        # what was queued (espeak's lengths vary by a few samples from run to run)
        tracks, sizes = list(avatar._speech._marks), [part.size for part in avatar._speech._parts]
        assert all(isinstance(track, VisemeTrack) for track in tracks)
        first_s = sizes[0] / AUDIO_RATE  # not a whole number of ticks

        def expected(index: int) -> str:
            middle = (index + 0.5) * TICK_S
            track, at = (tracks[0], middle) if middle < first_s else (tracks[1], middle - first_s)
            return SHAPES[mouth_pose(track.at(at), 1.0).shape].name

        ticks = int(sum(sizes) / AUDIO_RATE / TICK_S)
        shown = [_shape_shown(avatar.tick(i).frame) for i in range(ticks)]
        assert shown == [expected(i) for i in range(ticks)]
        boundary = int(first_s / TICK_S)
        assert "m b p" in shown[boundary : boundary + 3]  # "My" begins the second one
        await avatar.close()

    asyncio.run(run())


def test_audio_without_timings_keeps_the_loudness_mouth():
    async def run() -> None:
        avatar = LocalAvatar("ava", CATALOG.get("heart"), "low", Recorder())
        [spoken] = CATALOG.get("heart").sentences(SENTENCE)
        assert avatar.play(spoken.audio)  # audio made elsewhere: no phones came with it
        shown = [_shape_shown(avatar.tick(i).frame, loudness=True) for i in range(15)]
        assert all(name.startswith("loudness") for name in shown), shown
        assert len(set(shown)) > 2  # it does move, with the volume
        await avatar.close()

    asyncio.run(run())


def test_a_sentence_without_phones_keeps_the_loudness_mouth():
    class Untimed:
        """A voice whose sentences come with an empty timing (espeak sent no phoneme events)."""

        voice_id, label = "untimed", "Untimed"

        def sentences(self, text: str):
            yield Spoken(next(CATALOG.get("heart").sentences(text)).audio, phones=[])

    async def run() -> None:
        avatar = LocalAvatar("ava", Untimed(), "low", Recorder())
        await avatar.speak(SENTENCE)
        while avatar.queued_audio_s == 0:
            await asyncio.sleep(0.01)
        shown = [_shape_shown(avatar.tick(i).frame, loudness=True) for i in range(15)]
        assert all(name.startswith("loudness") or name == "rest" for name in shown), shown
        assert len(set(shown)) > 2  # moving with the volume, not held at rest
        await avatar.close()

    asyncio.run(run())


def test_the_loudness_setting_keeps_the_old_mouth_for_a_voice_with_timings():
    async def run() -> None:
        avatar = LocalAvatar("ava", CATALOG.get("espeak-us-male"), "low", Recorder(), lips_follow_phonemes=False)
        await avatar.speak(SENTENCE)
        while avatar.queued_audio_s == 0:
            await asyncio.sleep(0.01)
        shown = [_shape_shown(avatar.tick(i).frame, loudness=True) for i in range(15)]
        assert all(name.startswith("loudness") or name == "rest" for name in shown), shown
        assert len(set(shown)) > 2
        await avatar.close()

    asyncio.run(run())


def test_a_track_is_rest_where_no_phone_is_spoken():
    track = viseme_track(timed_phones(["m", "ɑ"], [0.2, 0.3], 0.4), 0.6)
    assert isinstance(track, VisemeTrack)
    assert mouth_pose(track.at(0.05), 1.0).shape == REST_SHAPE
    assert mouth_pose(track.at(0.55), 1.0).shape == REST_SHAPE
    assert mouth_pose(track.at(0.35), 1.0).shape == SHAPE_INDEX["aa"]
