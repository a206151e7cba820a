"""Memory of the app process (python bench/memory.py [cycles]): RSS per streaming
session, and RSS growth over many New -> Start (a viewer connects) -> Close cycles.
Target: growth <= 5 MB over 100 cycles."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from app_process import AppProcess  # noqa: E402
from webrtc_viewer import Viewer  # noqa: E402


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def cycle(url: str, stream: bool = True) -> None:
    viewer = Viewer(url)
    try:
        await viewer.acall("new_session", "ava", "heart", "low")
        if stream:
            await viewer.start()
            await asyncio.sleep(0.3)
        await viewer.acall("close_session")
    finally:
        await viewer.close()


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
    before = rss_mb(app.proc.pid)
    for _ in range(cycles):
        await cycle(app.url)
    await asyncio.sleep(3)
    after = rss_mb(app.proc.pid)
    return {"idle": idle, "per_session": (streaming - idle) / sessions, "before": before, "after": after}


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
    print(f"{'app idle RSS':>14} | {'RSS per streaming session':>25} | {f'growth over {cycles} cycles':>24}")
    print(f"{r['idle']:11.0f} MB | {r['per_session']:22.1f} MB | {r['after'] - r['before']:21.1f} MB"
          f"   ({r['before']:.0f} -> {r['after']:.0f} MB)")


if __name__ == "__main__":
    main()
