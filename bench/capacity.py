"""Capacity (python -m bench.capacity [max sessions] [seconds]): how many offline-avatar
sessions this machine keeps at >= 24 fps each, keying on, every avatar talking.

Sessions are added in steps; at each step every session gets a Repeat and the
viewers count frames for `seconds`. The viewers (aiortc, in this process) decode
every stream on the same cores as the app, so their CPU is printed too: the app's
own CPU per stream is what a server without local viewers spends. The last table
is py-spy's breakdown of the app's CPU at the last step that held 24 fps.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from bench.stream import cpu_seconds
from tests.support.app_process import AppProcess
from tests.support.webrtc_viewer import Viewer

ROOT = Path(__file__).resolve().parent.parent

STEPS = (1, 2, 4, 6, 8, 10, 12, 14, 16)
TEXT = "Hello there, nice to meet you. I am the offline avatar, and I am talking while you count my frames."
# the first pattern found walking a sampled stack from its innermost frame names where it goes
BUCKETS = [
    ("green-screen keying", r"avatar_core/keying\.py"),
    ("face rendering and motion", r"avatar_core/(face|motion)\.py"),
    ("speech synthesis", r"hibari|avatar_core/speech\.py"),
    ("VP8 encoding", r"aiortc/codecs/vpx\.py"),
    ("Opus encoding", r"aiortc/codecs/opus\.py"),
    ("frame to VideoFrame (colour conversion)", r"fastrtc/tracks\.py.*array_to_frame|av/video"),
    ("audio resampling (fastrtc)", r"fastrtc/utils\.py"),
    ("RTP, SRTP, DTLS, ICE", r"aiortc/(rtcrtpsender|rtcdtlstransport|rtcicetransport|rtp)|aioice|pylibsrtp"),
    ("media clock, streams, sessions", r"avatar_core/"),
    ("asyncio event loop", r"asyncio/"),
    ("threads waiting, handing over", r"threading\.py|queue\.py|concurrent/futures"),
    ("Gradio, HTTP", r"gradio|uvicorn|starlette|httpx"),
]


def profile(pid: int, seconds: float) -> list[tuple[str, float]]:
    """py-spy samples of the app, as shares of all on-CPU samples per bucket."""
    out = Path(tempfile.mkdtemp()) / "profile.txt"
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
    subprocess.run([py_spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "200",
                    "--format", "raw", "--nonblocking", "--output", str(out)], check=True, capture_output=True)
    shares: Counter[str] = Counter()
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")[::-1]
        bucket = next((name for frame in frames for name, pattern in BUCKETS if re.search(pattern, frame)),
                      "other (event loop, threads, interpreter)")
        shares[bucket] += int(count)
    total = sum(shares.values()) or 1
    return [(name, 100 * n / total) for name, n in shares.most_common()]


async def add_viewer(url: str) -> Viewer:
    viewer = Viewer(url, analyse_video=False)
    await viewer.acall("new_session", "ava", "heart", "low")
    await viewer.acall("set_background", True, "preset", "#000000", "studio", None)
    await viewer.start()
    return viewer


async def measure(app: AppProcess, max_sessions: int, seconds: float) -> tuple[list[dict], list]:
    viewers: list[Viewer] = []
    rows, breakdown = [], []
    try:
        for step in (s for s in STEPS if s <= max_sessions):
            while len(viewers) < step:
                viewers.append(await add_viewer(app.url))
            await asyncio.sleep(3)
            for viewer in viewers:
                await viewer.acall("repeat", TEXT)
            t0, app0, own0 = time.monotonic(), cpu_seconds(app.proc.pid), cpu_seconds(os.getpid())
            await asyncio.sleep(seconds)
            t1 = time.monotonic()
            fps = [v.video.fps(t0) for v in viewers]
            gaps = np.concatenate([v.video.gaps_ms(t0) for v in viewers])
            row = {"sessions": step, "min_fps": min(fps), "median_fps": float(np.median(fps)),
                   "gap_p95": float(np.percentile(gaps, 95)),
                   "app_cpu": 100 * (cpu_seconds(app.proc.pid) - app0) / (t1 - t0),
                   "viewer_cpu": 100 * (cpu_seconds(os.getpid()) - own0) / (t1 - t0)}
            rows.append(row)
            print(row, flush=True)
            if row["min_fps"] >= 24:
                breakdown = await asyncio.to_thread(profile, app.proc.pid, min(seconds, 10))
            else:
                break
    finally:
        for viewer in viewers:
            await viewer.close()
    return rows, breakdown


def main() -> None:
    max_sessions = int(sys.argv[1]) if len(sys.argv) > 1 else 16
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 10
    app = AppProcess({"MAX_SESSIONS": str(max_sessions)}).wait_ready()
    try:
        rows, breakdown = asyncio.run(measure(app, max_sessions, seconds))
    finally:
        app.stop()
    print(f"\n{'sessions':>8} | {'min fps':>7} {'median fps':>10} {'gap p95':>8} | {'app CPU %core':>13} "
          f"{'per stream':>10} | {'viewers CPU %core':>17}")
    for r in rows:
        print(f"{r['sessions']:>8} | {r['min_fps']:7.1f} {r['median_fps']:10.1f} {r['gap_p95']:6.0f}ms | "
              f"{r['app_cpu']:12.0f}% {r['app_cpu'] / r['sessions']:9.1f}% | {r['viewer_cpu']:16.0f}%")
    held = [r["sessions"] for r in rows if r["min_fps"] >= 24]
    print(f"\nsessions held at >= 24 fps each: {max(held) if held else 0}")
    if breakdown:
        print(f"\nwhere the app's CPU goes at {max(held)} sessions (py-spy, share of on-CPU samples):")
        for name, share in breakdown:
            print(f"  {share:5.1f}%  {name}")


if __name__ == "__main__":
    main()
