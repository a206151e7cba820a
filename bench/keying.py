"""Keying speed, ms per frame, side by side in one run (python bench/keying.py).

Rows: a plain frame copy (the floor), the original demo's rule (G > 90, R < 90,
B < 90) as a hard key in straightforward numpy, and our soft key with spill
suppression and compositing. Frames are the offline avatar on green.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from avatar_core.face import QUALITY_SIZES, FaceRenderer, Pose
from avatar_core.keying import remove_green, warm_up


def median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))


def naive_hard_key(frame: np.ndarray, background: np.ndarray, out: np.ndarray) -> None:
    b, g, r = frame[..., 0], frame[..., 1], frame[..., 2]
    mask = (g > 90) & (r < 90) & (b < 90)
    np.copyto(out, np.where(mask[..., None], background, frame))


def main() -> None:
    warm_up()
    rows = []
    for quality, (w, h) in QUALITY_SIZES.items():
        frame = FaceRenderer("ava", quality).render(Pose(mouth_level=4)).copy()
        background = np.full_like(frame, 90)
        out = np.empty_like(frame)
        repeats = 200 if w < 1000 else 100
        copy_ms = median_ms(lambda: np.copyto(out, frame), repeats)  # noqa: B023
        hard_ms = median_ms(lambda: naive_hard_key(frame, background, out), repeats)  # noqa: B023
        soft_ms = median_ms(lambda: remove_green(frame, background, out), repeats)  # noqa: B023
        rows.append((f"{w}x{h}", copy_ms, hard_ms, soft_ms))
    print(f"{'frame':>10} | {'copy (floor)':>12} | {'naive numpy hard key':>20} | {'soft key + spill':>16} | soft/copy")
    print("-" * 84)
    for size, copy_ms, hard_ms, soft_ms in rows:
        print(f"{size:>10} | {copy_ms:12.3f} | {hard_ms:20.3f} | {soft_ms:16.3f} | {soft_ms / copy_ms:8.1f}x")


if __name__ == "__main__":
    main()
