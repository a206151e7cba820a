"""The viewers' mouth measure (tests/support/mouth_measure.py) reads the mouth alone: on
frames drawn by the avatar's own renderer, at every sway its idle motion makes, each
mouth measures the same, a resting mouth measures nothing, and OPEN_MOUTH parts the
open vowels from every closed or narrow mouth. Issue 21: the measure used to count the
tips of Ava's hair at some sways, so whether a short sentence's mouth 'moved' depended
on when in the sway it was said."""

from __future__ import annotations

import numpy as np
import pytest

from avatar_core.providers.local.face import LOOKS, MOUTH_LEVELS, FaceRenderer, Pose
from avatar_core.providers.local.mouth_shapes import JAW_LEVELS, SHAPE_INDEX, MouthPose
from tests.support.mouth_measure import OPEN_MOUTH, mouth_darkness, sway_offsets

OPEN = {"aa": range(len(JAW_LEVELS)), "o": range(len(JAW_LEVELS)), "r": range(len(JAW_LEVELS)),
        "e": [len(JAW_LEVELS) - 1]}  # shape: the jaw levels at which it is open
CLOSED_OR_NARROW = ["rest", "m b p", "f v", "th", "t d l n", "k g", "ch sh", "s z", "ee", "w"]
LOUDNESS_OPEN_FROM = 4  # the loudness mouth is open from this of its MOUTH_LEVELS openings on


def measured(renderer: FaceRenderer, pose: Pose, at: list[tuple[int, int]]) -> set[float]:
    return {mouth_darkness(np.ascontiguousarray(renderer.render(Pose(pose.mouth_level, pose.mouth, dx=dx, dy=dy))))
            for dx, dy in at}


@pytest.mark.parametrize("quality", ["low", "medium", "high"])
@pytest.mark.parametrize("look", sorted(LOOKS))
def test_each_mouth_measures_the_same_at_every_sway_and_a_resting_one_nothing(look, quality):
    renderer = FaceRenderer(look, quality)
    at = sway_offsets(quality)
    assert len(at) > 20 and max(abs(dy) for _, dy in at) >= 3  # the sway moves the face both ways
    for name, shape in SHAPE_INDEX.items():
        for jaw in range(len(JAW_LEVELS)):
            values = measured(renderer, Pose(mouth=MouthPose(shape, jaw)), at)
            assert len(values) == 1, (name, jaw, sorted(values))
            darkness = values.pop()
            if name == "rest":
                assert darkness == 0.0  # nothing but the mouth is counted (Ava's hair was)
            elif name in OPEN and jaw in OPEN[name]:
                assert darkness > OPEN_MOUTH, (name, jaw, darkness)
            elif name in CLOSED_OR_NARROW:
                assert darkness < OPEN_MOUTH, (name, jaw, darkness)
    for level in range(MOUTH_LEVELS):
        values = measured(renderer, Pose(mouth_level=level), at)
        assert len(values) == 1, (level, sorted(values))
        assert (values.pop() > OPEN_MOUTH) == (level >= LOUDNESS_OPEN_FROM), level
