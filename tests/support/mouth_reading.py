"""Which mouth shape a received frame of the offline avatar shows: template matching of
the frame's mouth against the look's own shape sprites, after finding how far the
idle sway has moved the face (matched on the nose and cheeks, which never change).

A viewer keeps only a small crop per frame (`crop`); reading them is done afterwards
(`read`), so a live viewer does no matching while it receives.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import soxr
from numpy.lib.stride_tricks import sliding_window_view

from avatar_core.media.format import AUDIO_RATE, TICK_S
from avatar_core.providers.base import QUALITY_SIZES, Quality
from avatar_core.providers.local.face import face_sprites
from avatar_core.providers.local.mouth_shapes import SHAPES, mouth_pose
from avatar_core.providers.local.visemes import VisemeTrack


@dataclass(frozen=True)
class Reading:
    shape: str  # a SHAPES name (or "loudness N")
    distance: float  # mean absolute difference to that sprite, 0-255
    margin: float  # how much further the next-best shape is


class MouthReader:
    """With `loudness`, the loudness mouth's openings are candidates too ("loudness N")."""

    def __init__(self, look_id: str, quality: Quality, loudness: bool = False) -> None:
        sprites = face_sprites(look_id, quality)
        g = sprites.geometry
        self.size = QUALITY_SIZES[quality]
        self.margin = m = g.margin
        self._mouth = g.roi("mouth")
        hx, _ = g.head
        eye_y, s = g.eye(1)[1], g.s
        # nose, nostrils and cheek blush: between the eyes' and the mouth's patches
        self._anchor = (slice(int(eye_y + 0.2 * s), self._mouth[0].start),
                        slice(int(hx - 0.5 * s), int(hx + 0.5 * s)))
        self._anchor_pixels = sprites.canvas[self._anchor].astype(np.float32)
        # the crop a viewer keeps: anchor and mouth, plus the sway margin all round (frame coordinates)
        top, bottom = self._anchor[0].start - 2 * m, self._mouth[0].stop
        left = min(self._anchor[1].start, self._mouth[1].start) - 2 * m
        right = max(self._anchor[1].stop, self._mouth[1].stop)
        self._crop = (slice(max(0, top), bottom), slice(max(0, left), right))
        self._templates = [(shape.name, patch.astype(np.float32))
                           for shape, levels in zip(SHAPES, sprites.shapes, strict=True) for patch in levels]
        if loudness:  # after the shapes: the resting mouth, drawn alike, reads as "rest"
            self._templates += [(f"loudness {k}", mouth.astype(np.float32)) for k, mouth in enumerate(sprites.mouths)]

    def crop(self, frame: np.ndarray) -> np.ndarray:
        return frame[self._crop].copy()

    def read(self, crop: np.ndarray) -> Reading:
        m, (rows, cols) = self.margin, self._crop
        image = crop.astype(np.float32)
        # the frame is the canvas shifted by (m + dx, m + dy), dx, dy in [-m, m]
        a_rows, a_cols = self._anchor
        ah, aw = a_rows.stop - a_rows.start, a_cols.stop - a_cols.start
        y0, x0 = a_rows.start - 2 * m - rows.start, a_cols.start - 2 * m - cols.start
        region = image[y0 : y0 + ah + 2 * m, x0 : x0 + aw + 2 * m]
        windows = sliding_window_view(region, (ah, aw, 3))[:, :, 0]  # (2m+1, 2m+1, ah, aw, 3)
        cost = np.abs(windows - self._anchor_pixels).mean(axis=(2, 3, 4))
        iy, ix = np.unravel_index(int(np.argmin(cost)), cost.shape)  # frame = canvas shifted by 2m - i
        m_rows, m_cols = self._mouth
        top, left = m_rows.start - rows.start - 2 * m + iy, m_cols.start - cols.start - 2 * m + ix
        mouth = image[top : top + m_rows.stop - m_rows.start, left : left + m_cols.stop - m_cols.start]
        best: dict[str, float] = {}
        for name, template in self._templates:
            d = float(np.abs(mouth - template).mean())
            best[name] = min(d, best.get(name, np.inf))
        ranked = sorted(best, key=best.__getitem__)
        return Reading(ranked[0], best[ranked[0]], best[ranked[1]] - best[ranked[0]])


def sound_arrival(packets: Iterable[tuple[float, np.ndarray]], sentence: np.ndarray, rate: int) -> float | None:
    """When the first sample of `sentence` (mono, AUDIO_RATE) was heard: its loudness lined
    up, in 5 ms steps, with that of the received `packets` ((arrival time, mono samples at
    `rate`), each played from its arrival). None when nothing was received."""
    packets = list(packets)
    if not packets:
        return None
    received = np.concatenate([pcm for _, pcm in packets])
    heard = np.concatenate([t + np.arange(pcm.size) / rate for t, pcm in packets])
    hop = rate // 200
    reference = soxr.resample(sentence, AUDIO_RATE, rate)

    def envelope(x: np.ndarray) -> np.ndarray:
        frames = x[: x.size // hop * hop].reshape(-1, hop)
        e = np.sqrt(np.mean(frames**2, axis=1))
        return (e - e.mean()) / (e.std() + 1e-9)

    ref, got = envelope(reference), envelope(received)
    if got.size <= ref.size:
        return None
    score = np.correlate(got, ref, mode="valid")
    return float(heard[int(np.argmax(score)) * hop])


def frame_ticks(readings: Iterable[tuple[float, Reading]], heard: float) -> list[tuple[int, Reading]]:
    """Each frame's tick of the sentence: the one whose audio is heard for most of the 40 ms
    the frame is on screen (from its arrival until the next frame's)."""
    return [(round((t - heard) / TICK_S), r) for t, r in readings]


def expected_shapes(track: VisemeTrack, ticks: int) -> list[str]:
    """The shape the avatar draws on each tick of a sentence (at full loudness: the
    reader compares shapes, not jaw levels)."""
    return [SHAPES[mouth_pose(track.at((k + 0.5) * TICK_S), 1.0).shape].name for k in range(ticks)]
