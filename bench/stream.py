"""Stream quality, latency and cost at a headless WebRTC client on loopback
(python -m bench.stream [seconds]): the real app in its own process, the aiortc
viewer from tests/, keying on. One run per quality, 60 s by default, with a Repeat
every 3 s (20 tries in 60 s) so quality is measured while the avatar talks.

Columns: frames per second and frame-gap p50/p95/max at the client; Repeat (the
call, as the page makes it) to first speech audio and to first open mouth at the
client, p50/p95; the audio-video offset (mouth minus audio: per try from the onsets,
and over the whole run from the cross-correlation of mouth opening and loudness);
CPU of the whole app process, in % of one core.

The last rows relay the local stand-ins through the app (360p): HeyGen v1
(AVATAR_PROVIDER=heygen) and LiveAvatar in FULL and LITE mode. For them Repeat -> audio
is split in two at the moment the stand-in's avatar began sending speech (its
/_local/stats, same wall clock): "upstream" (the request, the stand-in's synthesis and
clock) and "relay" (its encoding, the transport, our receive and decode, the lip-sync
hold, keying, re-encoding, the viewer's decode). CPU is the app's alone, with its room
child processes (LiveAvatar), never the stand-in's.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import numpy as np

from tests.support.app_process import AppProcess
from tests.support.heygen_local_process import API_KEY as HEYGEN_KEY
from tests.support.heygen_local_process import LocalHeyGenProcess
from tests.support.liveavatar_local_process import API_KEY as LIVEAVATAR_KEY
from tests.support.liveavatar_local_process import LocalLiveAvatarProcess
from tests.support.mouth_measure import OPEN_MOUTH
from tests.support.standin_process import StandInProcess
from tests.support.webrtc_viewer import Received, Viewer

ROOT = Path(__file__).resolve().parent.parent

PHRASE = "Hello there, nice to meet you."  # about 1.5 s of speech
EVERY_S = 3.0


def cpu_seconds(pid: int) -> float:
    """CPU time of the process and its live children (LiveAvatar's room processes)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def envelope(track: Received, grid: np.ndarray) -> np.ndarray:
    """The track's values on a regular time grid (last value held), zero-mean."""
    times, values = np.asarray(track.times), np.asarray(track.values)
    index = np.clip(np.searchsorted(times, grid, side="right") - 1, 0, len(values) - 1)
    held = values[index]
    return held - held.mean()


def xcorr_offset_ms(video: Received, audio: Received, since: float, until: float, step_s: float = 0.005) -> float:
    """The lag of the mouth behind the loudness that best lines them up (within +-300 ms)."""
    grid = np.arange(since, until, step_s)
    mouth, loud = envelope(video, grid), envelope(audio, grid)
    lags = np.arange(-int(0.3 / step_s), int(0.3 / step_s) + 1)
    n = len(grid)
    scores = [np.dot(mouth[max(0, k):n + min(0, k)], loud[max(0, -k):n - max(0, k)]) for k in lags]
    return float(lags[int(np.argmax(scores))] * step_s * 1000)


async def measure(url: str, pid: int, quality: str, seconds: float, standin: StandInProcess | None = None) -> dict:
    async with Viewer(url) as viewer:
        await viewer.acall("new_session", "ava", "heart", quality)
        await viewer.acall("set_background", True, "preset", "#000000", "studio", None)
        await viewer.start()
        await asyncio.sleep(2)
        t0, cpu0 = time.monotonic(), cpu_seconds(pid)
        wall = time.time() - time.monotonic()  # monotonic -> wall clock, to meet the stand-in's times
        starts = []
        for i in range(int(seconds / EVERY_S)):
            starts.append(time.monotonic())
            await viewer.acall("repeat", PHRASE)
            await asyncio.sleep(max(0.0, t0 + (i + 1) * EVERY_S - time.monotonic()))
        t1 = time.monotonic()
        cpu = (cpu_seconds(pid) - cpu0) / (t1 - t0)
        audio_ms, mouth_ms, upstream_ms = [], [], []
        spoke = standin.speech_started_at() if standin else []
        for t in starts:
            a = viewer.audio.first_time(lambda rms: rms > 0.02, t)
            m = viewer.video.first_time(lambda dark: dark > OPEN_MOUTH, t)
            if a and m and a < t + EVERY_S and m < t + EVERY_S:
                audio_ms.append(1000 * (a - t))
                mouth_ms.append(1000 * (m - t))
                began = [w for w in spoke if t + wall <= w < a + wall]
                upstream_ms.append(1000 * (began[0] - wall - t) if began else np.nan)
        await viewer.acall("close_session")
        gaps = viewer.video.gaps_ms(t0)
        frames = [x for x in viewer.video.times if x <= t1]
        return {"quality": quality, "size": viewer.video.size, "fps": viewer.video.fps(t0) if frames else 0.0,
                "gaps": np.percentile(gaps, [50, 95, 100]), "tries": len(audio_ms), "of": len(starts),
                "to_audio": np.percentile(audio_ms, [50, 95]), "to_mouth": np.percentile(mouth_ms, [50, 95]),
                "onset_offset": np.percentile(np.subtract(mouth_ms, audio_ms), [50, 95]),
                "worst_onset_offset": float(np.max(np.abs(np.subtract(mouth_ms, audio_ms)))),
                "xcorr_offset": xcorr_offset_ms(viewer.video, viewer.audio, t0, t1), "cpu": 100 * cpu,
                "upstream": np.nanpercentile(upstream_ms, [50, 95]) if standin else None,
                "relay": np.nanpercentile(np.subtract(audio_ms, upstream_ms), [50, 95]) if standin else None}


def relayed(label: str, standin: StandInProcess, env: dict[str, str], seconds: float) -> dict:
    app = AppProcess(env).wait_ready()
    try:
        return {**asyncio.run(measure(app.url, app.proc.pid, "low", seconds, standin)), "quality": label}
    finally:
        app.stop()


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60
    qualities = sys.argv[2].split(",") if len(sys.argv) > 2 else ["low", "medium", "high"]
    app = AppProcess().wait_ready()
    try:
        rows = [asyncio.run(measure(app.url, app.proc.pid, q, seconds)) for q in qualities]
    finally:
        app.stop()
    heygen = LocalHeyGenProcess()
    try:
        rows.append(relayed("heygen", heygen, {"AVATAR_PROVIDER": "heygen", "HEYGEN_API_KEY": HEYGEN_KEY,
                                               "HEYGEN_BASE_URL": heygen.url}, seconds))
    finally:
        heygen.stop()
    liveavatar = LocalLiveAvatarProcess()
    try:
        for mode in ("full", "lite"):
            rows.append(relayed(f"LA {mode}", liveavatar, {
                "AVATAR_PROVIDER": "liveavatar", "LIVEAVATAR_API_KEY": LIVEAVATAR_KEY,
                "LIVEAVATAR_BASE_URL": liveavatar.url, "LIVEAVATAR_MODE": mode}, seconds))
    finally:
        liveavatar.stop()
    print(f"{seconds:.0f} s per row, a Repeat every {EVERY_S:.0f} s; times in ms; offsets are mouth minus audio")
    print(f"{'quality':>8} {'size':>9} | {'fps':>5} {'gap p50/p95/max':>16} | {'tries':>5} "
          f"{'->audio p50/p95':>15} {'->mouth p50/p95':>15} | {'onset offset p50/p95/max|.|':>27} "
          f"{'xcorr':>5} | {'CPU %core':>9} | {'upstream p50/p95':>16} {'relay p50/p95':>13}")
    for r in rows:
        size = "x".join(map(str, r["size"]))
        g, a, m, o = r["gaps"], r["to_audio"], r["to_mouth"], r["onset_offset"]
        print(f"{r['quality']:>8} {size:>9} | {r['fps']:5.1f} {g[0]:4.0f}/{g[1]:4.0f}/{g[2]:4.0f}ms   | "
              f"{r['tries']:>2}/{r['of']:<2} {a[0]:7.0f}/{a[1]:4.0f}   {m[0]:7.0f}/{m[1]:4.0f}   | "
              f"{o[0]:13.0f}/{o[1]:4.0f}/{r['worst_onset_offset']:4.0f}     {r['xcorr_offset']:5.0f} | "
              f"{r['cpu']:8.0f}% | " + split(r))


def split(row: dict) -> str:
    if row["upstream"] is None:
        return ""
    (u50, u95), (r50, r95) = row["upstream"], row["relay"]
    return f"{u50:9.0f}/{u95:4.0f}   {r50:6.0f}/{r95:4.0f}"


if __name__ == "__main__":
    main()
