import numpy as np
import pytest

from avatar_core.media.format import AUDIO_RATE as SAMPLE_RATE
from avatar_core.providers.local.speech import UnknownVoiceError, default_catalog, split_sentences

CATALOG = default_catalog()


@pytest.mark.parametrize("voice_id", list(CATALOG.voices))
def test_each_voice_speaks_audibly_for_a_plausible_time(voice_id):
    voice = CATALOG.get(voice_id)
    short = np.concatenate([s.audio for s in voice.sentences("Hello there.")])
    long = np.concatenate([s.audio for s in voice.sentences(
        "Hello there. This is a much longer sentence for the avatar to say.")])
    assert short.dtype == np.float32 and long.dtype == np.float32
    for audio, lo, hi in ((short, 0.4, 2.0), (long, 3.0, 8.0)):
        seconds = audio.size / SAMPLE_RATE
        assert lo < seconds < hi, seconds
        assert np.sqrt(np.mean(audio**2)) > 0.05  # not silent
        assert np.max(np.abs(audio)) <= 1.0


def test_sentences_come_one_by_one():
    parts = list(CATALOG.get("heart").sentences("First one. Second one! Third one?"))
    assert len(parts) == 3


def test_sentence_split_keeps_titles_and_decimals():
    sentences = split_sentences("Dr. Smith paid 3.5 dollars. Then he left.")
    assert sentences == ["Dr. Smith paid 3.5 dollars.", "Then he left."]


def test_unknown_voice_lists_the_valid_ones():
    with pytest.raises(UnknownVoiceError) as err:
        CATALOG.get("fenrir")
    for voice_id in CATALOG.voices:
        assert voice_id in str(err.value)
