"""Draws README's strip of the offline avatar's mouth shapes (python -m bench.mouth_strip):
each shape of mouth_shapes.py as the renderer paints it, at 720p, named under it."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from avatar_core.providers.local.face import face_sprites
from avatar_core.providers.local.mouth_shapes import SHAPES
from tests.support.app_process import ROOT

OUT = ROOT / "assets" / "mouth-shapes.png"
LOOKS = ("ava", "leo")
COLUMNS = len(SHAPES)  # a row per look
LABEL_H = 22


def main() -> None:
    tiles = []
    for look in LOOKS:
        sprites = face_sprites(look, "high")
        for shape, levels in zip(SHAPES, sprites.shapes, strict=True):
            tile = Image.fromarray(np.ascontiguousarray(levels[-1][:, :, ::-1]))  # BGR -> RGB
            labelled = Image.new("RGB", (tile.width, tile.height + LABEL_H), (30, 41, 59))
            labelled.paste(tile, (0, 0))
            ImageDraw.Draw(labelled).text((4, tile.height + 5), shape.name, fill=(240, 240, 240))
            tiles.append(labelled)
    w, h = tiles[0].size
    rows = -(-len(tiles) // COLUMNS)
    strip = Image.new("RGB", (COLUMNS * w, rows * h), (30, 41, 59))
    for i, tile in enumerate(tiles):
        strip.paste(tile, ((i % COLUMNS) * w, (i // COLUMNS) * h))
    strip.save(OUT, optimize=True)
    print(f"{OUT.relative_to(ROOT)}: {len(tiles)} mouths, {strip.width}x{strip.height}")


if __name__ == "__main__":
    main()
