"""The mouth shapes the offline avatar makes while speaking, and which viseme makes
which. Shapes are described, not drawn: face.py paints each once per look and size.

Visemes that look alike share a shape ("t d l" and "n ng": the tongue up behind the
teeth), so every shape here is one a viewer can tell apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .visemes import VISEMES


@dataclass(frozen=True)
class MouthShape:
    name: str
    opening: float = 0.0  # jaw drop, 0 closed .. 1 wide open (scaled by loudness)
    width: float = 1.0  # lip corners, relative to the resting mouth
    lips: float = 0.03  # lip thickness (x head size): rounded lips push out and thicken
    teeth_top: bool = True
    teeth_bottom: bool = False
    tongue: str = ""  # "" hidden | "low" | "up" (behind the upper teeth) | "tip" (between the teeth)
    bite: bool = False  # lower lip tucked under the upper teeth (f, v)
    pressed: bool = False  # lips pressed together (m, b, p)
    rest: bool = False  # the resting smile


SHAPES: tuple[MouthShape, ...] = (
    MouthShape("rest", rest=True),
    MouthShape("m b p", pressed=True, width=0.92),
    MouthShape("f v", opening=0.3, width=1.0, bite=True),
    MouthShape("th", opening=0.32, width=0.95, teeth_bottom=True, tongue="tip"),
    MouthShape("t d l n", opening=0.38, width=0.98, tongue="up"),
    MouthShape("k g", opening=0.5, width=0.88, tongue="low"),
    MouthShape("ch sh", opening=0.36, width=0.66, lips=0.05, teeth_bottom=True),
    MouthShape("s z", opening=0.14, width=1.08, teeth_bottom=True),
    MouthShape("r", opening=0.3, width=0.72, lips=0.045, teeth_top=False),
    MouthShape("aa", opening=1.0, width=1.0, tongue="low"),
    MouthShape("e", opening=0.62, width=1.12, tongue="low"),
    MouthShape("ee", opening=0.3, width=1.22, teeth_bottom=True),
    MouthShape("o", opening=0.8, width=0.66, lips=0.05, teeth_top=False, tongue="low"),
    MouthShape("oo", opening=0.38, width=0.5, lips=0.06, teeth_top=False),
    MouthShape("w", opening=0.16, width=0.4, lips=0.07, teeth_top=False),
)
SHAPE_INDEX = {shape.name: i for i, shape in enumerate(SHAPES)}
REST_SHAPE, CLOSED_SHAPE = SHAPE_INDEX["rest"], SHAPE_INDEX["m b p"]

VISEME_SHAPES: dict[str, str] = {
    "sil": "rest", "PP": "m b p", "FF": "f v", "TH": "th", "DD": "t d l n", "nn": "t d l n", "kk": "k g",
    "CH": "ch sh", "SS": "s z", "RR": "r", "aa": "aa", "E": "e", "I": "ee", "O": "o", "U": "oo", "WW": "w",
}
# (visemes, shapes): viseme weights @ VISEME_TO_SHAPE = shape weights
VISEME_TO_SHAPE = np.zeros((len(VISEMES), len(SHAPES)), np.float32)
for _viseme, _shape in VISEME_SHAPES.items():
    VISEME_TO_SHAPE[VISEMES.index(_viseme), SHAPE_INDEX[_shape]] = 1.0

JAW_LEVELS = (0.7, 0.85, 1.0)  # loudness scales the jaw: each shape is drawn at these openings
BLEND_STEPS = 8  # how finely an even split of two shapes' weights is told apart
# an even split cross-fades a third of the way: the heavier shape always reads as itself
BLEND_DIVISOR = 3 * BLEND_STEPS


@dataclass(frozen=True)
class MouthPose:
    """A shape at a jaw level, cross-faded blend_step / BLEND_DIVISOR toward a second."""

    shape: int
    jaw_level: int = len(JAW_LEVELS) - 1
    toward: int = REST_SHAPE
    blend_step: int = 0  # 0 .. BLEND_STEPS


def mouth_pose(viseme_weights: np.ndarray, loudness: float) -> MouthPose:
    """The two heaviest shapes in a track row, blended by their weights; the jaw by
    loudness (0 .. 1)."""
    weights = viseme_weights @ VISEME_TO_SHAPE
    second, first = np.argsort(weights)[-2:]
    total = float(weights[first] + weights[second])
    share = float(weights[second]) / total if total > 0 else 0.0
    jaw = min(len(JAW_LEVELS) - 1, int(loudness * len(JAW_LEVELS)))
    return MouthPose(int(first), jaw, int(second), min(BLEND_STEPS, round(share * 2 * BLEND_STEPS)))
