"""Memory of the app process (python -m bench.memory [cycles]): RSS per streaming
session, and RSS growth over many New -> Start (a viewer connects) -> Close cycles.
Target: growth <= 5 MB over 100 cycles. The first WARM_UP_CYCLES cycles are shown
apart: thread pools, allocator arenas and caches grow to their working size there."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.support.app_process import AppProcess
from tests.support.webrtc_viewer import Viewer

ROOT = Path(__file__).resolve().parent.parent

WARM_UP_CYCLES = 25


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def cycle(url: str, stream: bool = True) -> None:
    async with Viewer(url) as viewer:
        await viewer.acall("new_session", "ava", "heart", "low")
        if stream:
            await viewer.start()
            await asyncio.sleep(0.3)
        await viewer.acall("close_session")


async def measure(app: AppProcess, cycles: int, sessions: int = 4) -> dict[str, float]:
    for _ in range(3):  # warm up: sprites, voice, numba, codecs
        await cycle(app.url)
    await asyncio.sleep(2)
    idle = rss_mb(app.proc.pid)
    viewers = [Viewer(app.url) for _ in range(sessions)]
    for v in viewers:
        await v.acall("new_session", "ava", "heart", "low")
        await v.start()
    await asyncio.sleep(3)
    streaming = rss_mb(app.proc.pid)
    for v in viewers:
        await v.acall("close_session")
        await v.close()
    await asyncio.sleep(2)
    settled = rss_mb(app.proc.pid)
    for _ in range(WARM_UP_CYCLES):  # thread pools, allocator arenas and caches reach their working size
        await cycle(app.url)
    await asyncio.sleep(6)  # the app releases freed memory 5 s after sessions close
    before = rss_mb(app.proc.pid)
    curve = []
    for i in range(cycles):
        await cycle(app.url)
        if (i + 1) % 25 == 0:
            curve.append(f"{i + 1}: {rss_mb(app.proc.pid) - before:+.0f}")
    await asyncio.sleep(6)
    after = rss_mb(app.proc.pid)
    return {"idle": idle, "per_session": (streaming - idle) / sessions, "before": before, "after": after,
            "warm_up": before - settled, "curve": curve}


def main() -> None:
    cycles = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    env = {"MAX_SESSIONS": "4"}
    if len(sys.argv) > 2:  # e.g. MALLOC_ARENA_MAX=2, to compare allocator settings
        env.update(dict(arg.split("=", 1) for arg in sys.argv[2:]))
    app = AppProcess(env).wait_ready()
    try:
        r = asyncio.run(measure(app, cycles))
    finally:
        app.stop()
    print(f"{'app idle RSS':>14} | {'RSS per streaming session':>25} | {f'first {WARM_UP_CYCLES} cycles':>16} | "
          f"{f'growth over the next {cycles} cycles':>33}")
    print(f"{r['idle']:11.0f} MB | {r['per_session']:22.1f} MB | {r['warm_up']:13.1f} MB | "
          f"{r['after'] - r['before']:30.1f} MB   ({r['before']:.0f} -> {r['after']:.0f} MB)")
    print("growth after n cycles, MB:", ", ".join(r["curve"]))


if __name__ == "__main__":
    main()
