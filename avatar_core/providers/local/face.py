"""The offline avatar's face: drawn once per (look, size) with anti-aliased signed
distance shapes, then animated per frame by pasting precomputed patches.

Per frame the work is two small patch copies and a crop: the mouth (a shape from
the phonemes at a jaw opening, cross-faded toward the next shape, or for speech
without timings one of MOUTH_LEVELS openings) and the eyes (blink x gaze), on a canvas with a margin so the
whole avatar can sway and breathe by shifting the crop window.

Colours are given as RGB and stored BGR, the order fastrtc sends. Nothing green is
used on the avatar itself, so the chroma key leaves it whole.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial

import numpy as np

from ...errors import UserError
from ...text import shown
from ..base import QUALITY_SIZES, Quality
from .mouth_shapes import BLEND_DIVISOR, JAW_LEVELS, SHAPES, MouthPose, MouthShape

RGB = tuple[int, int, int]
KEY_GREEN_RGB: RGB = (0, 177, 64)
MOUTH_LEVELS = 8
BLINK_LEVELS = 5  # 0 open .. BLINK_LEVELS-1 closed
GAZES = (-1, 0, 1)  # looking left, ahead, right



class UnknownLookError(UserError):
    pass


@dataclass(frozen=True)
class Look:
    look_id: str
    label: str
    skin: RGB
    skin_shadow: RGB
    hair: RGB
    hair_style: str  # "long" | "short" | "bun"
    shirt: RGB
    iris: RGB
    lips: RGB


LOOKS: dict[str, Look] = {
    look.look_id: look
    for look in (
        Look("ava", "Ava", (241, 200, 170), (214, 163, 135), (72, 44, 30), "long",
             (112, 74, 164), (92, 62, 40), (196, 92, 96)),
        Look("leo", "Leo", (168, 112, 80), (136, 86, 60), (28, 22, 20), "short",
             (38, 56, 110), (60, 38, 22), (150, 72, 70)),
        Look("mira", "Mira", (250, 214, 192), (226, 176, 150), (168, 66, 32), "bun",
             (226, 104, 92), (70, 110, 170), (206, 96, 110)),
    )
}


def get_look(look_id: str) -> Look:
    try:
        return LOOKS[look_id]
    except KeyError:
        raise UnknownLookError(f"Unknown avatar ID {shown(look_id)}. Valid avatar IDs: {', '.join(LOOKS)}.") from None


# --- signed distance shapes (pixels; negative inside) ------------------------------------
Sdf = Callable[[np.ndarray, np.ndarray], np.ndarray]


def ellipse(cx: float, cy: float, rx: float, ry: float) -> Sdf:
    def sdf(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        dx, dy = (x - cx) / rx, (y - cy) / ry
        grad = 2 * np.sqrt((dx / rx) ** 2 + (dy / ry) ** 2) + 1e-6
        return (dx * dx + dy * dy - 1) / grad

    return sdf


def capsule(ax: float, ay: float, bx: float, by: float, r: float) -> Sdf:
    def sdf(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        px, py, vx, vy = x - ax, y - ay, bx - ax, by - ay
        t = np.clip((px * vx + py * vy) / (vx * vx + vy * vy), 0, 1)
        return np.hypot(px - t * vx, py - t * vy) - r

    return sdf


def union(*shapes: Sdf) -> Sdf:
    return lambda x, y: np.minimum.reduce([s(x, y) for s in shapes])


def intersect(*shapes: Sdf) -> Sdf:
    return lambda x, y: np.maximum.reduce([s(x, y) for s in shapes])


def subtract(shape: Sdf, cut: Sdf) -> Sdf:
    return lambda x, y: np.maximum(shape(x, y), -cut(x, y))


def above_curve(curve: Callable[[np.ndarray], np.ndarray]) -> Sdf:
    """Inside where y < curve(x) (vertical distance is close enough for thin edges)."""
    return lambda x, y: y - curve(x)


class Canvas:
    """A float BGR image painted shape by shape with coverage-based anti-aliasing. A
    canvas cut from another (`cut`) keeps the big one's coordinates, so a mouth or eye
    patch is painted without copying the whole frame."""

    def __init__(self, height: int, width: int, rgb: RGB) -> None:
        self.img = np.empty((height, width, 3), np.float32)
        self.img[:] = rgb[::-1]
        self.origin = (0, 0)  # (x, y) of img[0, 0] in the coordinates shapes are given in

    def paint(self, sdf: Sdf, rgb: RGB, box: tuple[float, float, float, float],
              opacity: float = 1.0, soft: float = 1.0) -> None:
        """Fill `sdf` with `rgb`; `box` = (x0, y0, x1, y1) bounds it; `soft` blurs the edge (px)."""
        h, w, _ = self.img.shape
        ox, oy = self.origin
        pad = 2 + 2 * soft
        x0, y0 = max(0, int(box[0] - ox - pad)), max(0, int(box[1] - oy - pad))
        x1, y1 = min(w, int(box[2] - ox + pad) + 1), min(h, int(box[3] - oy + pad) + 1)
        if x0 >= x1 or y0 >= y1:
            return
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32) + 0.5
        alpha = np.clip(0.5 - sdf(xs + ox, ys + oy) / soft, 0, 1) * opacity
        region = self.img[y0:y1, x0:x1]
        region += (np.array(rgb[::-1], np.float32) - region) * alpha[..., None]

    def cut(self, roi: tuple[slice, slice]) -> Canvas:
        part = Canvas.__new__(Canvas)
        part.img = self.img[roi].copy()
        part.origin = (self.origin[0] + (roi[1].start or 0), self.origin[1] + (roi[0].start or 0))
        return part

    def to_uint8(self) -> np.ndarray:
        return np.clip(self.img + 0.5, 0, 255).astype(np.uint8)


# --- the face -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Geometry:
    """Where things are, in canvas pixels (the canvas includes the sway margin)."""

    width: int
    height: int
    margin: int

    @property
    def s(self) -> float:  # head half-height, the unit of everything else
        return 0.23 * self.height

    @property
    def head(self) -> tuple[float, float]:
        return self.margin + self.width / 2, self.margin + 0.43 * self.height

    def eye(self, side: int) -> tuple[float, float]:
        hx, hy = self.head
        return hx + side * 0.32 * self.s, hy + 0.02 * self.s

    @property
    def mouth(self) -> tuple[float, float]:
        hx, hy = self.head
        return hx, hy + 0.56 * self.s

    def roi(self, name: str) -> tuple[slice, slice]:
        hx, _hy = self.head
        s = self.s
        if name == "eyes":
            cy = self.eye(1)[1]
            y0, y1, x0, x1 = cy - 0.19 * s, cy + 0.19 * s, hx - 0.56 * s, hx + 0.56 * s
        else:
            mx, my = self.mouth
            y0, y1, x0, x1 = my - 0.16 * s, my + 0.3 * s, mx - 0.36 * s, mx + 0.36 * s
        return slice(int(y0), int(y1) + 1), slice(int(x0), int(x1) + 1)


def _paint_body(c: Canvas, g: Geometry, look: Look) -> None:
    hx, hy = g.head
    s = g.s
    if look.hair_style == "long":
        c.paint(union(ellipse(hx, hy + 0.1 * s, 1.02 * s, 1.2 * s),
                      capsule(hx, hy + 0.3 * s, hx, hy + 1.3 * s, 0.98 * s)),
                look.hair, (hx - 2 * s, hy - 1.2 * s, hx + 2 * s, hy + 2.3 * s))
    if look.hair_style == "bun":
        c.paint(ellipse(hx, hy - 1.12 * s, 0.42 * s, 0.36 * s), look.hair,
                (hx - 0.5 * s, hy - 1.5 * s, hx + 0.5 * s, hy - 0.7 * s))
    # shoulders, neck and neckline
    c.paint(ellipse(hx, hy + 2.75 * s, 2.05 * s, 1.5 * s), look.shirt,
            (hx - 2.1 * s, hy + 1.2 * s, hx + 2.1 * s, g.margin * 2 + g.height))
    c.paint(capsule(hx, hy + 0.5 * s, hx, hy + 1.25 * s, 0.3 * s), look.skin_shadow,
            (hx - 0.4 * s, hy + 0.2 * s, hx + 0.4 * s, hy + 1.6 * s))
    c.paint(intersect(ellipse(hx, hy + 1.28 * s, 0.42 * s, 0.26 * s),
                      ellipse(hx, hy + 2.75 * s, 2.05 * s, 1.5 * s)), look.skin_shadow,
            (hx - 0.5 * s, hy + 1.0 * s, hx + 0.5 * s, hy + 1.6 * s))
    # ears, then the head (a rounder top over a narrower jaw)
    for side in (-1, 1):
        c.paint(ellipse(hx + side * 0.76 * s, hy + 0.08 * s, 0.12 * s, 0.2 * s), look.skin_shadow,
                (hx + side * 0.76 * s - 0.2 * s, hy - 0.2 * s, hx + side * 0.76 * s + 0.2 * s, hy + 0.4 * s))
    head = union(ellipse(hx, hy - 0.05 * s, 0.78 * s, 0.92 * s), ellipse(hx, hy + 0.25 * s, 0.62 * s, 0.78 * s))
    box = (hx - s, hy - 1.1 * s, hx + s, hy + 1.1 * s)
    c.paint(head, look.skin, box)
    c.paint(intersect(head, ellipse(hx, hy + 1.08 * s, 0.5 * s, 0.22 * s)), look.skin_shadow, box,
            opacity=0.3, soft=0.1 * s)  # soft shadow under the jaw line
    # hair on top: a cap with the face cut out of it
    cap = subtract(ellipse(hx, hy - 0.12 * s, 0.86 * s, 0.98 * s),
                   ellipse(hx + 0.06 * s, hy + 0.3 * s, 0.76 * s, 0.9 * s))
    thickness = 0.98 if look.hair_style != "short" else 0.93
    cap = intersect(cap, ellipse(hx, hy - 0.12 * s, 0.86 * s, thickness * s))
    c.paint(cap, look.hair, (hx - s, hy - 1.2 * s, hx + s, hy + 0.5 * s))
    # brows, nose, cheeks
    for side in (-1, 1):
        ex, ey = g.eye(side)
        c.paint(capsule(ex - side * 0.15 * s, ey - 0.25 * s, ex + side * 0.16 * s, ey - 0.21 * s, 0.03 * s),
                look.hair, (ex - 0.3 * s, ey - 0.35 * s, ex + 0.3 * s, ey - 0.1 * s))
        c.paint(ellipse(ex + side * 0.04 * s, ey + 0.3 * s, 0.14 * s, 0.08 * s), (236, 120, 120),
                (ex - 0.3 * s, ey + 0.1 * s, ex + 0.3 * s, ey + 0.5 * s), opacity=0.28, soft=0.06 * s)
    c.paint(capsule(hx + 0.02 * s, hy + 0.12 * s, hx + 0.05 * s, hy + 0.33 * s, 0.03 * s), look.skin_shadow,
            (hx - 0.2 * s, hy, hx + 0.2 * s, hy + 0.5 * s), opacity=0.7, soft=0.03 * s)
    c.paint(ellipse(hx, hy + 0.36 * s, 0.09 * s, 0.035 * s), look.skin_shadow,
            (hx - 0.2 * s, hy + 0.25 * s, hx + 0.2 * s, hy + 0.45 * s), opacity=0.8)


def _paint_eyes(c: Canvas, g: Geometry, look: Look, closed: float, gaze: int) -> None:
    s = g.s
    rx, ry = 0.16 * s, 0.1 * s
    for side in (-1, 1):
        ex, ey = g.eye(side)
        box = (ex - 0.25 * s, ey - 0.2 * s, ex + 0.25 * s, ey + 0.2 * s)
        sclera = ellipse(ex, ey, rx, ry)
        c.paint(sclera, (248, 246, 242), box)
        ix = ex + gaze * 0.06 * s
        c.paint(intersect(sclera, ellipse(ix, ey, 0.085 * s, 0.085 * s)), look.iris, box)
        c.paint(intersect(sclera, ellipse(ix, ey, 0.042 * s, 0.042 * s)), (20, 16, 16), box)
        c.paint(ellipse(ix - 0.03 * s, ey - 0.03 * s, 0.018 * s, 0.018 * s), (255, 255, 255), box)

        def lid_edge(x: np.ndarray, ex: float = ex, ey: float = ey) -> np.ndarray:
            u = np.clip((x - ex) / rx, -1, 1)
            return ey + (2 * closed - 1) * ry * np.sqrt(1 - u * u)

        around = ellipse(ex, ey, rx * 1.1, ry * 1.3)
        c.paint(intersect(around, above_curve(lid_edge)), look.skin, box)
        def near_lid(x: np.ndarray, y: np.ndarray) -> np.ndarray:
            return np.abs(y - lid_edge(x)) - 0.014 * s

        def within_eye(x: np.ndarray, y: np.ndarray, ex: float = ex) -> np.ndarray:
            return np.abs(x - ex) - rx * 1.04

        lash = intersect(near_lid, within_eye)
        c.paint(lash, (30, 22, 20), box)


def _paint_mouth(c: Canvas, g: Geometry, look: Look, openness: float) -> None:
    s = g.s
    mx, my = g.mouth
    w = 0.22 * s * (1 - 0.12 * openness)
    box = (mx - 0.36 * s, my - 0.16 * s, mx + 0.36 * s, my + 0.3 * s)
    if openness < 0.06:
        def smile(x: np.ndarray) -> np.ndarray:
            u = np.clip((x - mx) / w, -1, 1)
            return my + 0.035 * s * (1 - u * u) - 0.01 * s

        c.paint(ellipse(mx, my + 0.06 * s, w * 0.7, 0.05 * s), look.lips, box, opacity=0.55, soft=0.02 * s)
        line = intersect(lambda x, y: np.abs(y - smile(x)) - 0.016 * s, lambda x, y: np.abs(x - mx) - w)
        r, g_, b = look.lips
        c.paint(line, (int(r * 0.7), int(g_ * 0.7), int(b * 0.7)), box)
        return
    h = 0.035 * s + openness * 0.16 * s
    cy = my + 0.5 * h - 0.02 * s
    cavity = ellipse(mx, cy, w, h / 2 + 0.01 * s)
    c.paint(ellipse(mx, cy, w + 0.03 * s, h / 2 + 0.04 * s), look.lips, box)
    c.paint(cavity, (70, 22, 28), box)
    top = cy - h / 2
    c.paint(intersect(cavity, lambda x, y: y - (top + 0.05 * s)), (244, 242, 236), box)
    c.paint(intersect(cavity, ellipse(mx, cy + h / 2 + 0.02 * s, w * 0.6, 0.07 * s)), (204, 96, 110), box)


def _paint_shape(c: Canvas, g: Geometry, look: Look, shape: MouthShape, jaw: float) -> None:
    """One speaking mouth shape (mouth_shapes.py), its opening scaled by `jaw`."""
    if shape.rest:
        _paint_mouth(c, g, look, 0.0)
        return
    s = g.s
    mx, my = g.mouth
    box = (mx - 0.36 * s, my - 0.16 * s, mx + 0.36 * s, my + 0.3 * s)
    w = 0.2 * s * shape.width
    lip = shape.lips * s
    if shape.pressed:  # both lips full and pressed flat, a dark seam between them
        c.paint(ellipse(mx, my + 0.01 * s, w + 0.02 * s, 0.055 * s), look.lips, box)
        seam = (int(look.lips[0] * 0.55), int(look.lips[1] * 0.55), int(look.lips[2] * 0.55))
        c.paint(intersect(lambda x, y: np.abs(y - (my + 0.008 * s)) - 0.009 * s, lambda x, y: np.abs(x - mx) - w),
                seam, box)
        return
    h = (0.02 + 0.17 * shape.opening * jaw) * s
    cy = my + 0.5 * h - 0.02 * s
    top, bottom = cy - h / 2, cy + h / 2
    cavity = ellipse(mx, cy, w, h / 2 + 0.01 * s)
    c.paint(ellipse(mx, cy, w + lip, h / 2 + lip + 0.01 * s), look.lips, box)
    c.paint(cavity, (70, 22, 28), box)
    if shape.tongue == "low":
        c.paint(intersect(cavity, ellipse(mx, bottom + 0.02 * s, w * 0.6, 0.07 * s)), (204, 96, 110), box)
    if shape.teeth_top:
        c.paint(intersect(cavity, lambda x, y: y - (top + 0.045 * s)), (244, 242, 236), box)
    if shape.teeth_bottom:
        c.paint(intersect(cavity, lambda x, y: (bottom - 0.035 * s) - y), (232, 230, 224), box)
    if shape.tongue == "up":  # the tip against the ridge behind the upper teeth
        c.paint(intersect(cavity, ellipse(mx, top + 0.065 * s, w * 0.42, 0.035 * s)), (204, 96, 110), box)
    if shape.tongue == "tip":  # out between the teeth
        c.paint(ellipse(mx, cy + 0.005 * s, w * 0.5, max(0.02 * s, 0.3 * h)), (214, 104, 118), box)
    if shape.bite:  # the lower lip comes up under the upper teeth
        c.paint(intersect(ellipse(mx, cy, w + lip, h / 2 + lip + 0.01 * s),
                          ellipse(mx, bottom + 0.01 * s, w + 0.01 * s, 0.55 * h)), look.lips, box)


@dataclass
class FaceSprites:
    """Everything precomputed for one look at one size."""

    canvas: np.ndarray  # uint8 BGR base with margin; eyes and mouth are pasted over it
    mouths: list[np.ndarray]  # opened by loudness alone (speech without phoneme timings)
    shapes: list[list[np.ndarray]]  # [SHAPES index][JAW_LEVELS index]: lips that follow the phonemes
    eyes: dict[tuple[int, int], np.ndarray]  # (blink level, gaze) -> patch
    geometry: Geometry

    @property
    def size(self) -> tuple[int, int]:
        return self.geometry.width, self.geometry.height


@lru_cache(maxsize=16)
def face_sprites(look_id: str, quality: Quality) -> FaceSprites:
    look = get_look(look_id)
    width, height = QUALITY_SIZES[quality]
    g = Geometry(width, height, margin=max(4, round(0.02 * height)))
    base = Canvas(height + 2 * g.margin, width + 2 * g.margin, KEY_GREEN_RGB)
    _paint_body(base, g, look)
    eyes_roi, mouth_roi = g.roi("eyes"), g.roi("mouth")

    def patch(roi: tuple[slice, slice], draw: Callable[[Canvas], None]) -> np.ndarray:
        c = base.cut(roi)
        draw(c)
        return c.to_uint8()

    mouths = [patch(mouth_roi, partial(_paint_mouth, g=g, look=look, openness=i / (MOUTH_LEVELS - 1)))
              for i in range(MOUTH_LEVELS)]
    shapes = [[patch(mouth_roi, partial(_paint_shape, g=g, look=look, shape=shape, jaw=jaw)) for jaw in JAW_LEVELS]
              for shape in SHAPES]
    eyes = {(b, gz): patch(eyes_roi, partial(_paint_eyes, g=g, look=look, closed=b / (BLINK_LEVELS - 1), gaze=gz))
            for b in range(BLINK_LEVELS) for gz in GAZES}
    canvas = base.to_uint8()
    canvas[mouth_roi] = mouths[0]
    canvas[eyes_roi] = eyes[(0, 0)]
    return FaceSprites(canvas, mouths, shapes, eyes, g)


@dataclass(frozen=True)
class Pose:
    mouth_level: int = 0  # the loudness mouth, used when `mouth` is None
    mouth: MouthPose | None = None  # a shape from the phonemes
    blink_level: int = 0
    gaze: int = 0
    dx: int = 0  # sway, pixels, within +-margin
    dy: int = 0


class FaceRenderer:
    """Per-session renderer: its own working canvas, shared read-only sprites."""

    def __init__(self, look_id: str, quality: Quality) -> None:
        self.sprites = face_sprites(look_id, quality)
        self._canvas = self.sprites.canvas.copy()
        self._eyes_roi = self.sprites.geometry.roi("eyes")
        self._mouth_roi = self.sprites.geometry.roi("mouth")
        self._blend = np.zeros_like(self.sprites.mouths[0], np.uint16)

    @property
    def size(self) -> tuple[int, int]:
        return self.sprites.size

    def render(self, pose: Pose) -> np.ndarray:
        """A view of the frame for `pose` (valid until the next call)."""
        sp = self.sprites
        self._canvas[self._mouth_roi] = self._mouth(pose)
        self._canvas[self._eyes_roi] = sp.eyes[(pose.blink_level, pose.gaze)]
        m = sp.geometry.margin
        dx, dy = max(-m, min(m, pose.dx)), max(-m, min(m, pose.dy))
        width, height = sp.size
        return self._canvas[m + dy : m + dy + height, m + dx : m + dx + width]

    def _mouth(self, pose: Pose) -> np.ndarray:
        mouth = pose.mouth
        if mouth is None:
            return self.sprites.mouths[pose.mouth_level]
        first = self.sprites.shapes[mouth.shape][mouth.jaw_level]
        if mouth.blend_step == 0:
            return first
        second = self.sprites.shapes[mouth.toward][mouth.jaw_level]
        # a cross-fade on a patch of ~100x60 pixels: tens of microseconds
        np.multiply(first, np.uint16(BLEND_DIVISOR - mouth.blend_step), out=self._blend, dtype=np.uint16)
        self._blend += second.astype(np.uint16) * np.uint16(mouth.blend_step)
        self._blend //= BLEND_DIVISOR
        return self._blend
