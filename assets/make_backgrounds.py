"""Draws the preset backgrounds in assets/backgrounds/ (run once; the JPEGs are committed)."""

from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

OUT = Path(__file__).resolve().parent / "backgrounds"
W, H = 1920, 1080


def grid() -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    return x / W, y / H


def studio() -> np.ndarray:
    x, y = grid()
    r = np.hypot(x - 0.5, (y - 0.45) * 0.8)
    t = np.clip(r / 0.75, 0, 1)[..., None]
    return (np.array([222, 228, 238]) * (1 - t) + np.array([96, 110, 136]) * t).astype(np.uint8)


def sunset() -> np.ndarray:
    x, y = grid()
    t = y[..., None]
    sky = np.array([255, 190, 120]) * (1 - t) + np.array([120, 60, 140]) * t
    sun = np.clip(1 - np.hypot(x - 0.72, (y - 0.62) * 0.56) / 0.09, 0, 1)[..., None]
    return np.clip(sky + sun * 120, 0, 255).astype(np.uint8)


def office() -> np.ndarray:
    rng = np.random.default_rng(7)
    x, y = grid()
    img = (np.array([70, 62, 58]) + 60 * y[..., None]).astype(np.float32)
    for _ in range(60):  # out-of-focus lights
        cx, cy, rad = rng.uniform(0, 1), rng.uniform(0, 0.7), rng.uniform(0.02, 0.06)
        colour = rng.choice([[255, 214, 150], [255, 240, 220], [150, 190, 255]])
        disc = np.clip(1 - np.hypot((x - cx) * 1.78, y - cy) / rad, 0, 1)[..., None] ** 0.5
        img += disc * np.array(colour) * 0.35
    pic = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    return np.asarray(pic.filter(ImageFilter.GaussianBlur(6)))


if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    for name, draw in {"studio": studio, "sunset": sunset, "office": office}.items():
        Image.fromarray(draw()).save(OUT / f"{name}.jpg", quality=86)
