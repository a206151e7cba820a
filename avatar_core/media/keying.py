"""Green-screen removal: a soft chroma key with green-spill suppression, composited
over a prepared background, in one numba pass per frame.

Frames are uint8 (H, W, 3). The key treats the first and last channel alike, so it
works the same on RGB and BGR frames (the pipeline uses BGR, what fastrtc sends).

Per pixel, greenness d = G - max(R, B):
  d <= soft_low   -> foreground (alpha 1)
  d >= soft_high  -> background (alpha 0)
  in between      -> linear alpha, the anti-aliased edge.
Spill: green above max(R, B) is clamped to it, so edge pixels lose their green cast.
"""

from __future__ import annotations

import numpy as np
from numba import njit

SOFT_LOW = 24
SOFT_HIGH = 72


@njit(cache=True, nogil=True)
def _key_composite(src, bg, out, low, high):  # pragma: no cover - compiled
    h, w, _ = src.shape
    span = float(high - low)
    for y in range(h):
        for x in range(w):
            c0 = np.int32(src[y, x, 0])
            g = np.int32(src[y, x, 1])
            c2 = np.int32(src[y, x, 2])
            m = c0 if c0 > c2 else c2
            d = g - m
            if d <= low:
                out[y, x, 0] = c0
                out[y, x, 1] = g if g < m else m
                out[y, x, 2] = c2
            elif d >= high:
                out[y, x, 0] = bg[y, x, 0]
                out[y, x, 1] = bg[y, x, 1]
                out[y, x, 2] = bg[y, x, 2]
            else:
                a = (high - d) / span
                b = 1.0 - a
                out[y, x, 0] = np.uint8(c0 * a + bg[y, x, 0] * b + 0.5)
                out[y, x, 1] = np.uint8(m * a + bg[y, x, 1] * b + 0.5)
                out[y, x, 2] = np.uint8(c2 * a + bg[y, x, 2] * b + 0.5)


def remove_green(
    frame: np.ndarray,
    background: np.ndarray,
    out: np.ndarray | None = None,
    soft_low: int = SOFT_LOW,
    soft_high: int = SOFT_HIGH,
) -> np.ndarray:
    """Key `frame`'s green out and composite it over `background` (same shape)."""
    if frame.shape != background.shape or frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frame {frame.shape} and background {background.shape} must match (H, W, 3)")
    if out is None:
        out = np.empty_like(frame)
    _key_composite(frame, background, out, soft_low, soft_high)  # views work: numba handles strides
    return out


def warm_up() -> None:
    """Compile (or load the cached compilation) before the first real frame."""
    tiny = np.zeros((2, 2, 3), np.uint8)
    remove_green(tiny, tiny)
