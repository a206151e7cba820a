"""Lip sync through the whole path: the app in its own process, a known sentence, and
an aiortc viewer reading the mouth shape of every VP8 frame it receives."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from avatar_core.media.format import AUDIO_RATE, TICK_S
from avatar_core.providers.local.speech import default_catalog
from avatar_core.providers.local.visemes import viseme_track
from tests.support.app_process import AppProcess
from tests.support.mouth_reading import MouthReader, expected_shapes, frame_ticks, sound_arrival
from tests.support.webrtc_viewer import AUDIO_PCM_RATE, Viewer

pytestmark = pytest.mark.integration  # starts the app

SENTENCE = "Bob moved the map, while you wait."
VOICE = "espeak-us-male"
RECOGNIZER_LOADED = "speech recognition model loaded"  # deterministic: the viewer's expectation is the app's own track


@pytest.fixture(scope="module")
def app():
    app = AppProcess({}).wait_ready()
    app.wait_for_output(RECOGNIZER_LOADED, timeout=120)  # the last of start-up's loads: the machine is free
    yield app
    app.stop()


def test_the_viewer_sees_the_mouth_shapes_of_the_words_it_hears(app):
    [spoken] = default_catalog().get(VOICE).sentences(SENTENCE)
    assert spoken.phones is not None
    duration = spoken.audio.size / AUDIO_RATE
    expected = expected_shapes(viseme_track(spoken.phones, duration), int(duration / TICK_S))
    reader = MouthReader("ava", "low")

    async def body() -> Viewer:
        async with Viewer(app.url, mouth_reader=reader) as viewer:
            await viewer.acall("new_session", "ava", VOICE, "low")
            await viewer.start()
            await asyncio.sleep(1.0)  # connected and settled
            mark = await viewer.log_mark()
            await viewer.acall("repeat", SENTENCE)
            assert await viewer.wait_for_line("Avatar finished speaking.", after=mark, timeout=20)
            await asyncio.sleep(0.5)  # the last frames and packets are in
        return viewer

    viewer = asyncio.run(body())
    heard = sound_arrival(viewer.audio_packets, spoken.audio, AUDIO_PCM_RATE)
    assert heard is not None, "no speech reached the viewer"
    readings = [(t, reader.read(crop)) for t, crop in viewer.mouth_crops if heard - 0.5 <= t <= heard + duration]
    shown = frame_ticks(readings, heard)
    during = [(k, r) for k, r in shown if 0 <= k < len(expected)]
    # every frame shows one of the look's shapes, drawn cleanly (VP8 blurs a little)
    assert len(during) >= 0.9 * len(expected), (len(during), len(expected))
    assert np.median([r.distance for _, r in during]) < 12, [r.distance for _, r in during]
    # the shapes are the sentence's, frame for frame, in step with the sound the viewer hears
    # (within a frame: how close is bench/lipsync.py's to measure, on a machine not shared)
    def match(shift: int) -> float:
        return float(np.mean([r.shape == expected[k + shift] for k, r in during if 0 <= k + shift < len(expected)]))

    matches = {shift: match(shift) for shift in range(-3, 4)}
    assert max(matches[-1], matches[0], matches[1]) >= 0.85, matches
    assert max(matches[-1], matches[0], matches[1]) > max(matches[-3], matches[3]) + 0.2, matches  # not by chance
    sealed = [k for k, r in during if r.shape == "m b p" and (k - 1, "m b p") not in {(j, q.shape) for j, q in during}]
    assert len(sealed) >= 4, [r.shape for _, r in during]  # Bob (twice), moved, map
