"""Stream quality and cost at a headless WebRTC client on loopback, per quality
(python bench/stream.py [seconds]): the real app in its own process, the aiortc
viewer from tests/, keying on. Prints one row per quality.

Columns: frames per second and frame-gap p50/p95 at the client; Repeat (API call)
to first speech audio and to first open mouth at the client; the lag of the mouth
behind the audio; CPU of the whole app process while streaming, in % of one core.

The last row relays the HeyGen-compatible local server through the app
(AVATAR_PROVIDER=heygen, 360p): its latency minus the local row's is what the relay
adds (receive, decode, key, re-encode); its CPU is the app's alone.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from app_process import AppProcess  # noqa: E402
from heygen_local_process import API_KEY, LocalHeyGenProcess  # noqa: E402
from webrtc_viewer import Viewer  # noqa: E402


def cpu_seconds(pid: int) -> float:
    import os

    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(url: str, pid: int, quality: str, seconds: float, repeats: int = 5) -> dict:
    viewer = Viewer(url)
    try:
        await viewer.acall("new_session", "ava", "heart", quality)
        await viewer.acall("set_background", True, "preset", "#000000", "studio", None)
        await viewer.start()
        await asyncio.sleep(1)
        t0, cpu0 = time.monotonic(), cpu_seconds(pid)
        await asyncio.sleep(seconds)
        cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
        gaps = viewer.video.gaps_ms(t0)
        audio_ms, mouth_ms = [], []
        for _ in range(repeats):
            t = time.monotonic()
            await viewer.acall("repeat", "Hello there, nice to meet you.")
            await asyncio.sleep(3.5)
            a = viewer.audio.first_time(lambda rms: rms > 0.02, t)
            m = viewer.video.first_time(lambda dark: dark > 0.05, t)
            if a and m:
                audio_ms.append(1000 * (a - t))
                mouth_ms.append(1000 * (m - t))
        await viewer.acall("close_session")
        return {"quality": quality, "size": viewer.video.size, "fps": viewer.video.fps(t0),
                "gap_p50": np.percentile(gaps, 50), "gap_p95": np.percentile(gaps, 95),
                "to_audio": np.median(audio_ms), "to_mouth": np.median(mouth_ms),
                "mouth_lag": np.median(np.subtract(mouth_ms, audio_ms)), "cpu": 100 * cpu}
    finally:
        await viewer.close()


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10
    app = AppProcess().wait_ready()
    try:
        rows = [asyncio.run(measure(app.url, app.proc.pid, q, seconds)) for q in ("low", "medium", "high")]
    finally:
        app.stop()
    server = LocalHeyGenProcess()
    app = AppProcess({"AVATAR_PROVIDER": "heygen", "HEYGEN_API_KEY": API_KEY,
                      "HEYGEN_BASE_URL": server.url}).wait_ready()
    try:
        relay = asyncio.run(measure(app.url, app.proc.pid, "low", seconds))
        rows.append({**relay, "quality": "relay"})
    finally:
        app.stop()
        server.stop()
    print(f"{'quality':>8} {'size':>9} | {'fps':>5} {'gap p50':>8} {'gap p95':>8} | {'repeat->audio':>13} "
          f"{'repeat->mouth':>13} {'mouth-audio':>11} | {'app CPU %core':>13}")
    for r in rows:
        size = "x".join(map(str, r["size"]))
        print(f"{r['quality']:>8} {size:>9} | {r['fps']:5.1f} {r['gap_p50']:6.1f}ms {r['gap_p95']:6.1f}ms | "
              f"{r['to_audio']:11.0f}ms {r['to_mouth']:11.0f}ms {r['mouth_lag']:9.0f}ms | {r['cpu']:12.0f}%")


if __name__ == "__main__":
    main()
