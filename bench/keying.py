"""Keying speed, ms per frame, side by side in one run (python -m bench.keying).

Frames are the offline avatar on its green screen, scaled to each size. Rows:
- plain frame copy (np.copyto): the floor;
- ours: soft key + green-spill suppression + compositing over a background (numba);
- the original demo's per-pixel JavaScript loop, alpha only, run in node (V8's JIT);
- OpenCV's hard key, inRange + copyTo (pip install -r requirements-bench.txt);
- the demo's rule as straightforward numpy, for reference.
Targets at 720p: ours no slower than the JavaScript alpha-only loop, and within 2x
of OpenCV's hard key.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from avatar_core.media.keying import remove_green, warm_up
from avatar_core.providers.local.face import FaceRenderer, Pose

ROOT = Path(__file__).resolve().parent.parent

SIZES = [(512, 512), (640, 360), (1280, 720), (1920, 1080)]


def median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))


def avatar_frame(width: int, height: int) -> np.ndarray:
    frame = FaceRenderer("ava", "high").render(Pose(mouth_level=4)).copy()
    return np.asarray(Image.fromarray(frame).resize((width, height), Image.Resampling.BILINEAR))


def naive_numpy(frame: np.ndarray, background: np.ndarray, out: np.ndarray) -> None:
    b, g, r = frame[..., 0], frame[..., 1], frame[..., 2]
    mask = (g > 90) & (r < 90) & (b < 90)
    np.copyto(out, np.where(mask[..., None], background, frame))


def opencv_rows(frames: dict) -> dict:
    try:
        import cv2
    except ImportError:
        return {}
    cv2.setNumThreads(1)
    lower, upper = np.array([0, 91, 0], np.uint8), np.array([89, 255, 89], np.uint8)  # BGR: G > 90, R, B < 90
    results = {}
    for size, (frame, background) in frames.items():
        out = np.empty_like(frame)

        def key(frame=frame, background=background, out=out) -> None:
            np.copyto(out, frame)
            cv2.copyTo(background, cv2.inRange(frame, lower, upper), out)

        results[size] = median_ms(key, 100)
    return results


def javascript_rows(frames: dict) -> dict:
    if shutil.which("node") is None:
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        args = []
        for (w, h), (frame, _) in frames.items():
            rgba = np.dstack([frame[..., ::-1], np.full(frame.shape[:2], 255, np.uint8)])
            path = Path(tmp) / f"{w}x{h}.rgba"
            path.write_bytes(rgba.tobytes())
            args.append(f"{path}:{w}:{h}")
        done = subprocess.run(["node", str(ROOT / "bench" / "keying_demo_loop.js"), *args], capture_output=True,
                              text=True, check=True)
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    return {tuple(map(int, r["size"].split("x"))): r["ms"] for r in rows}


def main() -> None:
    warm_up()
    frames = {(w, h): (avatar_frame(w, h), np.full((h, w, 3), 90, np.uint8)) for w, h in SIZES}
    ours, floor, naive = {}, {}, {}
    for size, (frame, background) in frames.items():
        out = np.empty_like(frame)
        floor[size] = median_ms(lambda frame=frame, out=out: np.copyto(out, frame), 200)
        ours[size] = median_ms(lambda f=frame, b=background, o=out: remove_green(f, b, o), 100)
        naive[size] = median_ms(lambda f=frame, b=background, o=out: naive_numpy(f, b, o), 30)
    javascript, opencv = javascript_rows(frames), opencv_rows(frames)

    def cell(table: dict, size) -> str:
        return f"{table[size]:8.3f}" if size in table else "     n/a"

    print("ms per frame, one core, medians")
    print(f"{'frame':>10} | {'copy':>8} | {'ours':>8} | {'JS loop':>8} | {'OpenCV':>8} | {'numpy':>8} | "
          f"{'ours/JS':>7} | {'ours/CV':>7}")
    print("-" * 92)
    for size in frames:
        ratio_js = f"{ours[size] / javascript[size]:6.2f}x" if size in javascript else "    n/a"
        ratio_cv = f"{ours[size] / opencv[size]:6.2f}x" if size in opencv else "    n/a"
        print(f"{size[0]:>5}x{size[1]:<4} | {cell(floor, size)} | {cell(ours, size)} | {cell(javascript, size)} | "
              f"{cell(opencv, size)} | {cell(naive, size)} | {ratio_js} | {ratio_cv}")
    print("\nours = soft key + spill suppression + composite; JS loop = alpha only (no composite, no spill);"
          "\nOpenCV = hard key (inRange + copyTo), no soft edge, no spill suppression.")


if __name__ == "__main__":
    main()
