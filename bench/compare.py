"""Two checkouts side by side in one run (python -m bench.compare OTHER_TREE [rounds]
[seconds] [--no-capacity]): the stream's low row (bench/stream.py) alternating between the trees, then
capacity at 6 and 10 talking sessions (bench/capacity.py) for each. OTHER_TREE is a
checkout of another commit (`git worktree add /tmp/base <commit>`); both run on this
virtualenv. Prints each tree's medians and the ratio this/other.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from statistics import median

import numpy as np

from bench.capacity import TEXT, add_viewer
from bench.stream import cpu_seconds, measure
from tests.support.app_process import ROOT, AppProcess
from tests.support.webrtc_viewer import Viewer

CAPACITY_STEPS = (6, 10)


async def capacity(app: AppProcess, seconds: float) -> dict[int, dict[str, float]]:
    viewers: list[Viewer] = []
    rows: dict[int, dict[str, float]] = {}
    try:
        for step in CAPACITY_STEPS:
            while len(viewers) < step:
                viewers.append(await add_viewer(app.url))
            await asyncio.sleep(3)
            for viewer in viewers:
                await viewer.acall("repeat", TEXT)
            t0, cpu0 = time.monotonic(), cpu_seconds(app.proc.pid)
            await asyncio.sleep(seconds)
            cpu = 100 * (cpu_seconds(app.proc.pid) - cpu0) / (time.monotonic() - t0)
            fps = [v.video.fps(t0) for v in viewers]
            rows[step] = {"min_fps": min(fps), "cpu_per_stream": cpu / step}
    finally:
        for viewer in viewers:
            await viewer.close()
    return rows


def main() -> None:
    other = Path(sys.argv[1]).resolve()
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 30
    with_capacity = "--no-capacity" not in sys.argv
    trees = {"other": other, "this": ROOT}
    stream: dict[str, list[dict]] = {name: [] for name in trees}
    for r in range(rounds):
        for name in (("other", "this") if r % 2 == 0 else ("this", "other")):  # neither always goes first
            app = AppProcess(root=trees[name]).wait_ready()
            try:
                stream[name].append(asyncio.run(measure(app.url, app.proc.pid, "low", seconds)))
            finally:
                app.stop()
            print(name, {k: stream[name][-1][k] for k in ("fps", "to_audio", "onset_offset", "cpu")}, flush=True)
    cap: dict[str, dict[int, dict[str, float]]] = {}
    for name in ("other", "this") if with_capacity else ():
        app = AppProcess({"MAX_SESSIONS": str(max(CAPACITY_STEPS))}, root=trees[name]).wait_ready()
        try:
            cap[name] = asyncio.run(capacity(app, seconds / 3))
        finally:
            app.stop()
        print(name, cap[name], flush=True)

    def row(label: str, values: dict[str, float], unit: str) -> None:
        ratio = values["this"] / values["other"] if values["other"] else float("nan")
        print(f"{label:<38} | {values['other']:9.1f} {values['this']:9.1f} {unit:<6} | {ratio:6.2f}")

    print(f"\n{rounds} alternating rounds of {seconds:.0f} s (stream, low 640x360, keying on, a Repeat every 3 s); "
          f"other = {other}")
    print(f"{'':<38} | {'other':>9} {'this':>9} {'':<6} | {'this/other':>6}")

    def med(name: str, key: str, index: int | None = None) -> float:
        return median(float(r[key] if index is None else r[key][index]) for r in stream[name])

    row("fps at the viewer", {n: med(n, "fps") for n in trees}, "fps")
    row("frame gap p95", {n: med(n, "gaps", 1) for n in trees}, "ms")
    row("Repeat -> first speech p50", {n: med(n, "to_audio", 0) for n in trees}, "ms")
    row("Repeat -> first speech p95", {n: med(n, "to_audio", 1) for n in trees}, "ms")
    row("mouth - audio onset p50", {n: med(n, "onset_offset", 0) for n in trees}, "ms")
    row("app CPU, one stream", {n: med(n, "cpu") for n in trees}, "%core")
    for step in CAPACITY_STEPS if with_capacity else ():
        row(f"capacity {step} sessions: min fps", {n: cap[n][step]["min_fps"] for n in trees}, "fps")
        row(f"capacity {step} sessions: CPU per stream", {n: cap[n][step]["cpu_per_stream"] for n in trees}, "%core")
    spread = {n: float(np.ptp([r["cpu"] for r in stream[n]])) for n in trees}
    print(f"\n(one-stream CPU spread across rounds: other {spread['other']:.1f}, this {spread['this']:.1f} %core)")


if __name__ == "__main__":
    main()
