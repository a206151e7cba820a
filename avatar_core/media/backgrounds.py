"""What replaces the removed green: a colour, a preset picture from assets/, or an
uploaded picture (checked for type, byte size and pixel count before it is decoded)."""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import UserError
from ..text import shown

PRESETS_DIR = Path(__file__).resolve().parents[2] / "assets" / "backgrounds"
UPLOAD_MAX_BYTES = 8 * 1024 * 1024
UPLOAD_MAX_PIXELS = 25_000_000  # e.g. 6000x4000; larger is refused before decoding
UPLOAD_FORMATS = {"PNG", "JPEG", "WEBP"}
UPLOAD_SUFFIXES = [".png", ".jpg", ".jpeg", ".webp"]  # what the file picker offers: the formats above
STORED_MAX_SIDE = 1280  # uploads are kept at most this large: enough for 720p frames
STORED_MAX_BYTES = 400_000  # and as a JPEG of at most this many bytes (one per browser, kept an hour)
STORED_QUALITIES = (85, 65, 45, 25, 15)  # tried in turn until the JPEG fits (then smaller sides)


class BackgroundError(UserError):
    pass


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.jpg"))


_HEX = re.compile(r"^#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})$")
_NUMBER = r"\d{1,3}(?:\.\d{1,6})?"  # 0-255 with a fraction: nothing that could overflow or fail to parse
_RGB_FUNC = re.compile(rf"^rgba?\(\s*({_NUMBER})\s*,\s*({_NUMBER})\s*,\s*({_NUMBER})\s*(?:,\s*{_NUMBER}\s*)?\)$")


def parse_color(value: str) -> tuple[int, int, int]:
    """'#1e293b', '#abc' or 'rgb(30, 41, 59)' / 'rgba(...)' (Gradio's picker sends both)."""
    value = (value or "").strip()
    if m := _HEX.match(value):
        digits = m.group(1)
        if len(digits) == 3:
            digits = "".join(c * 2 for c in digits)
        return tuple(int(digits[i : i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]
    if m := _RGB_FUNC.match(value):
        rgb = tuple(round(float(v)) for v in m.groups())
        if all(0 <= v <= 255 for v in rgb):
            return rgb  # type: ignore[return-value]
    raise BackgroundError(f"{shown(value)} is not a colour; use a hex colour like #1e293b.")


@dataclass(frozen=True)
class StoredPicture:
    """An upload as kept between uses: a small JPEG (decoded only when a frame size needs it)."""

    jpeg: bytes

    def pixels(self) -> np.ndarray:
        with Image.open(io.BytesIO(self.jpeg)) as img:
            return np.asarray(img.convert("RGB"), np.uint8)


def _as_jpeg(img: Image.Image) -> bytes:
    while True:  # a photo fits at the first quality; only noise-like pictures go further
        for quality in STORED_QUALITIES:
            out = io.BytesIO()
            img.save(out, "JPEG", quality=quality)
            if out.tell() <= STORED_MAX_BYTES:
                return out.getvalue()
        img = img.resize((max(1, img.width * 3 // 4), max(1, img.height * 3 // 4)))


def load_upload(path: str | os.PathLike[str]) -> StoredPicture:
    """An uploaded picture, after checking it is a PNG/JPEG/WebP of sane size."""
    size = os.path.getsize(path)
    if size > UPLOAD_MAX_BYTES:
        raise BackgroundError(f"The picture is {size / 1e6:.1f} MB; the limit is {UPLOAD_MAX_BYTES / 1e6:.0f} MB.")
    try:
        with Image.open(path) as img:
            if img.format not in UPLOAD_FORMATS:
                raise BackgroundError(f"{img.format or 'This'} files are not accepted; upload a PNG, JPEG or WebP.")
            w, h = img.size
            if w * h > UPLOAD_MAX_PIXELS:
                raise BackgroundError(f"The picture is {w}x{h} pixels; the limit is {UPLOAD_MAX_PIXELS / 1e6:.0f} "
                                      "megapixels.")
            img.draft("RGB", (STORED_MAX_SIDE, STORED_MAX_SIDE))  # JPEG: decode smaller directly
            img = img.convert("RGB")
            img.thumbnail((STORED_MAX_SIDE, STORED_MAX_SIDE))
            return StoredPicture(_as_jpeg(img))
    except BackgroundError:
        raise
    except Exception:  # PIL raises many kinds for broken or hostile files
        raise BackgroundError("That file is not a readable picture; upload a PNG, JPEG or WebP.") from None


@lru_cache(maxsize=8)
def _load_preset(name: str) -> np.ndarray:
    if name not in preset_names():
        raise BackgroundError(f"Unknown preset {shown(name)}. Presets: {', '.join(preset_names())}.")
    with Image.open(PRESETS_DIR / f"{name}.jpg") as img:
        return np.asarray(img.convert("RGB"), np.uint8)


def cover(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale and centre-crop to fill width x height; returned as BGR, like the frames."""
    h, w, _ = rgb.shape
    scale = max(width / w, height / h)
    img = Image.fromarray(rgb).resize((max(width, round(w * scale)), max(height, round(h * scale))),
                                      Image.Resampling.BILINEAR)
    left, top = (img.width - width) // 2, (img.height - height) // 2
    out = np.asarray(img.crop((left, top, left + width, top + height)), np.uint8)
    return np.ascontiguousarray(out[:, :, ::-1])


@dataclass(frozen=True)
class BackgroundChoice:
    """The person's choice; kept per browser, applied to their session at its size."""

    remove: bool = False
    kind: str = "color"  # "color" | "preset" | "upload"
    color: tuple[int, int, int] = (30, 41, 59)
    preset: str = "studio"
    upload: StoredPicture | None = field(default=None, compare=False, repr=False)

    def describe(self) -> str:
        if not self.remove:
            return "Background removal off (green screen shown)."
        if self.kind == "preset":
            return f"Background removed, replaced by the {self.preset!r} picture."
        if self.kind == "upload":
            return "Background removed, replaced by your picture."
        return "Background removed, replaced by colour #{:02x}{:02x}{:02x}.".format(*self.color)

    def render(self, width: int, height: int) -> np.ndarray | None:
        """The frame-sized BGR background, or None when removal is off."""
        if not self.remove:
            return None
        if self.kind == "preset":
            return cover(_load_preset(self.preset), width, height)
        if self.kind == "upload":
            if self.upload is None:
                raise BackgroundError("Upload a picture first, or choose a colour or preset.")
            return cover(self.upload.pixels(), width, height)
        frame = np.empty((height, width, 3), np.uint8)
        frame[:] = self.color[::-1]
        return frame
