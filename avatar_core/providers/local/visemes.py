"""Timed phones -> mouth-shape weights, with openfacefx's coarticulation (a sound's
shape leans into its neighbours', lips still seal on m, b, p).

openfacefx's 15 Oculus visemes plus one: "w" gets its own shape (openfacefx folds it
into "oo"), as a face rounds its lips tighter for "w" than for "oo".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import numpy as np

from .phonemes import Phone

if TYPE_CHECKING:
    from openfacefx.coarticulation import CoartParams
    from openfacefx.mapping import Mapping

VISEMES = ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "I", "O", "U", "WW")
CLOSED = VISEMES.index("PP")
REST = VISEMES.index("sil")
TRACK_RATE = 100  # weights every 10 ms: any tick's midpoint is within 5 ms of a row
# a word gap shorter than this keeps the mouth moving; a longer pause (a comma) rests it
SHORT_SILENCE_S = 0.1
# a lip closure is shown on any frame whose 40 ms it falls in: hibari's "b" may last 25 ms,
# shorter than a frame, and lips that never meet on it look wrong
CLOSURE_REACH_ROWS = 2
CLOSURE_WEIGHT = 0.85  # openfacefx raises a closure's middle to 0.9


@cache
def _mapping() -> Mapping:
    from openfacefx.mapping import Mapping, Target

    default = Mapping.default()
    if tuple(default.target_names) != VISEMES[:-1]:
        raise RuntimeError(f"openfacefx's visemes are not the 15 this module maps: {default.target_names}")
    rows = {**default.rows, "W": {"WW": 1.0}}
    return Mapping(targets=[*default.targets, Target("WW", "lips")], rows=rows)


@dataclass(frozen=True)
class VisemeTrack:
    """Weights of each of VISEMES every 1/TRACK_RATE s from the sentence's first sample."""

    weights: np.ndarray  # (rows, len(VISEMES)) float32, each row sums to ~1

    def at(self, seconds: float) -> np.ndarray:
        row = min(len(self.weights) - 1, max(0, round(seconds * TRACK_RATE)))
        return self.weights[row]


def viseme_track(phones: Sequence[Phone], duration_s: float) -> VisemeTrack:
    """The track for a sentence of `duration_s`; rest where no phone is spoken."""
    from openfacefx.alignment import PhonemeSegment
    from openfacefx.coarticulation import build_viseme_curves

    rows = max(1, round(duration_s * TRACK_RATE) + 1)
    weights = np.zeros((rows, len(VISEMES)), np.float32)
    weights[:, REST] = 1.0
    segments = [PhonemeSegment(p.phoneme, p.start_s, p.end_s) for p in phones]
    if not segments:
        return VisemeTrack(weights)
    times, curves = build_viseme_curves(segments, fps=TRACK_RATE, mapping=_mapping(), params=_params())
    first = max(0, round(times[0] * TRACK_RATE))  # its grid starts at the first phone
    last = min(rows, first + len(curves))
    weights[first:last] = curves[: last - first]
    return VisemeTrack(_closures_widened(weights))


def _closures_widened(weights: np.ndarray) -> np.ndarray:
    """Rows within CLOSURE_REACH_ROWS of a sealed row (m, b, p) take that row."""
    sealed = np.flatnonzero(weights[:, CLOSED] >= CLOSURE_WEIGHT)
    out = weights.copy()
    for offset in range(-CLOSURE_REACH_ROWS, CLOSURE_REACH_ROWS + 1):
        near = np.clip(sealed + offset, 0, len(weights) - 1)
        take = weights[near, CLOSED] < CLOSURE_WEIGHT  # never overwrite another seal
        out[near[take]] = weights[sealed[take]]
    return out


@cache
def _params() -> CoartParams:
    from openfacefx.coarticulation import CoartParams

    return CoartParams(short_silence=SHORT_SILENCE_S)


def warm_up() -> None:
    """Import openfacefx and build its mapping now (~0.2 s), not on the first sentence."""
    viseme_track([Phone("M", 0.0, 0.1), Phone("AA", 0.1, 0.2)], 0.2)
