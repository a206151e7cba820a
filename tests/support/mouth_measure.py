"""How open the offline avatar's mouth is in a received frame: the share of very dark
pixels in a box that holds every mouth the avatar draws, wherever its idle sway has
moved the face, and nothing else dark.

The box is the union of the dark pixels of every mouth sprite of every look (shapes at
each jaw opening, the loudness mouths), grown by how far the sway reaches. A box at the
mouth's resting place instead counted the tips of Ava's long hair at some sways (they
reach the box's lower corners when the face is shifted ~6 px aside and 3 px up: up to
+0.015), so the same mouth measured 0.049 or 0.064 by the sway phase alone (issue 21).

Measured in this box (tests/test_mouth_measure.py keeps it so), the same at every sway,
for every look and size: rest, m b p, f v, th, ch sh, s z, ee, t d l n, k g, w and "e"
at its least jaw measure 0.062 at most; aa and o at any jaw (>= 0.118), r (>= 0.094),
"e" at full jaw (>= 0.102) and the loudness mouth from its fifth opening (>= 0.093) are
above OPEN_MOUTH. (oo, 0.073-0.094, and "e" at its middle jaw, 0.062-0.089, fall either side.)
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from avatar_core.media.format import FPS
from avatar_core.providers.base import QUALITY_SIZES, Quality
from avatar_core.providers.local.face import LOOKS, face_sprites
from avatar_core.providers.local.motion import IdleMotion

DARK_SUM = 200  # B + G + R below this: the inside of an open mouth (hair too, which the box keeps out)
SWAY_SEEN_S = 10  # longer than either period of the sway (7 s across, 4.2 s up and down)
OPEN_MOUTH = 0.08  # above every closed or narrow mouth (<= 0.062), below every open vowel (>= 0.093)


def mouth_darkness(frame: np.ndarray) -> float:
    """Share of dark pixels in the mouth box of a frame of the offline avatar's size."""
    h, w, _ = frame.shape
    rows, cols = mouth_box(w, h)
    return float(np.mean(frame[rows, cols].astype(np.int32).sum(axis=2) < DARK_SUM))


@lru_cache(maxsize=len(QUALITY_SIZES))
def mouth_box(width: int, height: int) -> tuple[slice, slice]:
    """Frame rows and columns where any mouth of any look can be, at any sway."""
    quality = quality_of(width, height)
    reach_x, reach_y = sway_reach(quality)
    first = face_sprites(next(iter(LOOKS)), quality)
    rows, cols = first.geometry.roi("mouth")
    margin = first.geometry.margin
    dark = np.zeros((rows.stop - rows.start, cols.stop - cols.start), bool)
    for look_id in LOOKS:
        sprites = face_sprites(look_id, quality)
        for mouth in [*(patch for levels in sprites.shapes for patch in levels), *sprites.mouths]:
            dark |= mouth.astype(np.int32).sum(axis=2) < DARK_SUM
    ys, xs = np.nonzero(dark)
    # canvas -> frame: the frame is the canvas from (margin + dx, margin + dy), |dx|, |dy| within the reach
    top, left = rows.start - margin + int(ys.min()), cols.start - margin + int(xs.min())
    bottom, right = rows.start - margin + int(ys.max()) + 1, cols.start - margin + int(xs.max()) + 1
    return slice(top - reach_y, bottom + reach_y), slice(left - reach_x, right + reach_x)


def sway_reach(quality: Quality) -> tuple[int, int]:
    """How far (x, y pixels) the avatar's own idle motion moves the face."""
    offsets = sway_offsets(quality)
    return max(abs(dx) for dx, _ in offsets), max(abs(dy) for _, dy in offsets)


@lru_cache(maxsize=len(QUALITY_SIZES))
def sway_offsets(quality: Quality) -> list[tuple[int, int]]:
    """The (dx, dy) the avatar's own idle motion moves the face by in SWAY_SEEN_S: each period's
    full reach, across and up and down (the box is grown by those reaches, whatever their mix)."""
    motion = IdleMotion(face_sprites(next(iter(LOOKS)), quality).geometry.margin, FPS, seed=0)
    return sorted({(p.dx, p.dy) for p in (motion.pose(tick, 0) for tick in range(SWAY_SEEN_S * FPS))})


def quality_of(width: int, height: int) -> Quality:
    return next(q for q, size in QUALITY_SIZES.items() if size == (width, height))

