"""Soak (python -m bench.soak [minutes] [sessions]): mixed traffic at the session cap for a
long time, against the HeyGen stand-in (upstream sessions and faults) and the LLM stand-in.

- `sessions` legitimate visitors, each in a loop: New, Start, then Repeat / Talk / Interrupt
  every few seconds for 40-80 s, then Close; one cycle in four the visitor vanishes instead
  (its connections drop, no Close: the app must notice and free the slot).
- One hostile client: the hostile-input table (tests/test_hardening.py) and garbage WebRTC
  offers, over and over.
- Upstream faults: every 90 s the stand-in answers every request with 500, 429 or late
  (past HEYGEN_TIMEOUT_S) for 8 s.
- Every 5 minutes the visitors finish their window and Close, and once no session is open
  anywhere the app's RSS is read: a floor that the number of live sessions does not blur.
Each minute: the app's RSS, threads and open file descriptors, and the sessions open at the
stand-in. At the end: the trend of each after the warm-up (least squares, per hour, with the
spread of the samples around it), every legitimate streaming window's frame rate, sessions
left open upstream once everything closed, and any HTTP reply with a traceback.
Targets: no growth trend, every window >= 24 fps, 0 upstream sessions left, 0 tracebacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import sys
import time
import uuid
from dataclasses import dataclass, field

import httpx
import numpy as np

from bench.memory import rss_mb
from bench.stream import cpu_seconds
from tests.support.app_process import AppProcess
from tests.support.heygen_local_process import API_KEY, LocalHeyGenProcess
from tests.support.openai_process import OpenAIServerProcess
from tests.support.webrtc_viewer import Viewer
from tests.test_hardening import HOSTILE

T0 = time.monotonic()  # reset when the traffic starts
WARM_UP_MIN = 5  # samples before this are shown but not in the trend
FAULT_EVERY_S, FAULT_FOR_S = 90.0, 8.0
FAULTS = ("500", "429", "slow")
FLOOR_EVERY_S, FLOOR_SETTLE_S = 300.0, 10.0
SAY = ["Hello there, this is a soak test.", "The quick brown fox jumps over the lazy dog. Twice, in fact.",
       "Numbers: one, two, three, four, five."]


@dataclass
class Tally:
    windows_fps: list[float] = field(default_factory=list)  # one per legitimate streaming window
    cycles: int = 0
    vanished: int = 0
    refused: int = 0  # actions refused with a message (faults, the cap): expected, counted
    hostile_calls: int = 0
    tracebacks: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # anything a person would call a failure


def proc_counts(pid: int) -> tuple[float, int, int]:
    with open(f"/proc/{pid}/status") as status:
        threads = next(int(line.split()[1]) for line in status if line.startswith("Threads:"))
    return rss_mb(pid), threads, len(os.listdir(f"/proc/{pid}/fd"))


def check_body(tally: Tally, text: str) -> None:
    if "Traceback" in text or 'File "' in text:
        tally.tracebacks.append(text[:300])


async def visitor(url: str, tally: Tally, stop: asyncio.Event, traffic: asyncio.Event, seed: int) -> None:
    """`traffic` cleared: finish this window, Close, and wait (the floor is being measured)."""
    rng = random.Random(seed)
    while not stop.is_set():
        await traffic.wait()
        viewer = Viewer(url, analyse_video=False)
        vanish = rng.random() < 0.25
        try:
            try:
                await viewer.acall("new_session", "ava", "heart", "low")
                await viewer.start(timeout=20)
            except Exception as exc:  # a fault or the cap: said in one line; try again soon
                tally.refused += 1
                check_body(tally, str(exc))
                await asyncio.sleep(2)
                continue
            began = time.monotonic()
            until = began + rng.uniform(40, 80)
            while time.monotonic() < until and not stop.is_set() and traffic.is_set():
                action = rng.choice(["repeat", "repeat", "talk", "interrupt"])
                try:
                    if action == "talk":
                        await viewer.acall("talk", rng.choice(SAY), "llm")
                    elif action == "repeat":
                        await viewer.acall("repeat", rng.choice(SAY))
                    else:
                        await viewer.acall("interrupt")
                except Exception as exc:
                    tally.refused += 1
                    check_body(tally, str(exc))
                await asyncio.sleep(rng.uniform(2, 6))
            fps = viewer.video.fps(since=began + 2)
            if time.monotonic() - began >= 10:  # a window cut short by a floor reading is too short to judge
                tally.windows_fps.append(fps)
            if fps < 24 and time.monotonic() - began >= 10:
                tally.errors.append(f"a window at {fps:.1f} fps, {began - T0:.0f}-{time.monotonic() - T0:.0f} s "
                                    f"into the run (faults every {FAULT_EVERY_S:.0f} s)")
            tally.cycles += 1
            if vanish and traffic.is_set():
                tally.vanished += 1
            else:
                try:
                    await viewer.acall("close_session")
                except Exception as exc:
                    tally.refused += 1
                    check_body(tally, str(exc))
        finally:
            await viewer.close()  # the vanished one's peers just drop, as a closed laptop's do


async def hostile(url: str, tally: Tally, stop: asyncio.Event) -> None:
    config = httpx.get(url + "/config", timeout=10).json()
    video = next(c["id"] for c in config["components"] if c["props"].get("elem_id") == "avatar-video")
    async with httpx.AsyncClient(timeout=30) as http:
        while not stop.is_set():
            for api_name, args, _ in HOSTILE:
                if stop.is_set():
                    return
                body = json.dumps({"data": list(args), "session_hash": "soak-hostile"})
                reply = await http.post(f"{url}/gradio_api/run/{api_name}", content=body,
                                        headers={"content-type": "application/json"})
                check_body(tally, reply.text)
                garbage = {"component_id": video, "fn_name": "offer", "session_hash": uuid.uuid4().hex,
                           "data": {"sdp": "v=0 garbage", "type": "offer", "webrtc_id": uuid.uuid4().hex[:12]}}
                reply = await http.post(f"{url}/gradio_api/component_server/", json=garbage)
                check_body(tally, reply.text)
                tally.hostile_calls += 2
                await asyncio.sleep(0.5)


async def floors(app: AppProcess, heygen: LocalHeyGenProcess, traffic: asyncio.Event, stop: asyncio.Event,
                 found: list[tuple[float, float]]) -> None:
    """Every FLOOR_EVERY_S: traffic pauses until no session is open anywhere, then the app's
    RSS is read (memory is released 5 s after sessions close): a floor free of the noise
    of how many sessions happen to be live."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), FLOOR_EVERY_S)
            return
        traffic.clear()
        deadline = time.monotonic() + 120
        while await asyncio.to_thread(heygen.open_sessions) and time.monotonic() < deadline:
            await asyncio.sleep(1)
        await asyncio.sleep(FLOOR_SETTLE_S)
        found.append(((time.monotonic() - T0) / 60, rss_mb(app.proc.pid)))
        print(f"  floor at {found[-1][0]:5.1f} min: RSS {found[-1][1]:6.1f} MB with no session open", flush=True)
        traffic.set()


async def faults(heygen: LocalHeyGenProcess, stop: asyncio.Event) -> None:
    n = 0
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), FAULT_EVERY_S)
            return
        except TimeoutError:
            pass
        fault = FAULTS[n % len(FAULTS)]
        n += 1
        await asyncio.to_thread(heygen.set_fault, fault, 7.0 if fault == "slow" else None)
        await asyncio.sleep(FAULT_FOR_S)
        await asyncio.to_thread(heygen.set_fault, None)


async def sample(app: AppProcess, heygen: LocalHeyGenProcess, samples: list[tuple], last: asyncio.Event) -> None:
    """Each minute, and once more when `last` is set; CPU as a share of one core over the minute."""
    t0 = time.monotonic()
    pids = {"app": app.proc.pid, "stand-in": heygen.proc.pid, "bench": os.getpid()}
    cpu = {name: (cpu_seconds(pid), t0) for name, pid in pids.items()}
    while True:
        rss, threads, fds = proc_counts(app.proc.pid)
        upstream = await asyncio.to_thread(heygen.open_sessions)
        now = time.monotonic()
        shares = {}
        for name, pid in pids.items():
            used, since = cpu[name]
            cpu[name] = (cpu_seconds(pid), now)
            shares[name] = (cpu[name][0] - used) / max(1e-6, now - since) * 100
        samples.append(((now - t0) / 60, rss, threads, fds, upstream, shares["app"]))
        print(f"  {samples[-1][0]:5.1f} min: RSS {rss:6.1f} MB, {threads} threads, {fds} fds, "
              f"{upstream} upstream; CPU " + ", ".join(f"{k} {v:.0f} %" for k, v in shares.items()), flush=True)
        if last.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(last.wait(), 60)


def trend(minutes: np.ndarray, values: np.ndarray) -> tuple[float, float]:
    """(slope per hour, spread of the samples around the line)."""
    if len(minutes) < 3:
        return float("nan"), float("nan")
    slope, intercept = np.polyfit(minutes, values, 1)
    return slope * 60, float(np.std(values - (slope * minutes + intercept)))


async def soak(minutes: float, sessions: int) -> None:
    heygen = LocalHeyGenProcess("--max-sessions", str(sessions + 2))
    llm = OpenAIServerProcess()
    # the product's admission by frame rate on (test apps turn it off)
    app = AppProcess({"ADMISSION_MIN_FPS": "24",
                      "AVATAR_PROVIDER": "heygen", "HEYGEN_API_KEY": API_KEY, "HEYGEN_BASE_URL": heygen.url,
                      "HEYGEN_TIMEOUT_S": "5", "MAX_SESSIONS": str(sessions), "SESSION_IDLE_TIMEOUT_S": "20",
                      "OPENAI_BASE_URL": llm.base_url, "OPENAI_API_KEY": "soak"}).wait_ready()
    llm.script(chunks=["Sure. ", "Here is a short answer, said sentence by sentence. ", "That is all."])
    tally, samples, stop, settled, traffic = Tally(), [], asyncio.Event(), asyncio.Event(), asyncio.Event()
    floor: list[tuple[float, float]] = []
    traffic.set()
    try:
        sampler = asyncio.create_task(sample(app, heygen, samples, settled))
        workers = [asyncio.create_task(visitor(app.url, tally, stop, traffic, seed)) for seed in range(sessions)]
        workers += [asyncio.create_task(hostile(app.url, tally, stop)), asyncio.create_task(faults(heygen, stop)),
                    asyncio.create_task(floors(app, heygen, traffic, stop, floor))]
        global T0
        T0 = time.monotonic()
        await asyncio.sleep(minutes * 60)
        stop.set()
        traffic.set()  # no visitor waits for a floor reading any more
        await asyncio.gather(*workers, return_exceptions=True)
        await asyncio.to_thread(heygen.set_fault, None)
        await asyncio.sleep(45)  # vanished sessions reach their idle timeout; failed stops retry
        settled.set()
        await sampler  # its last sample: everything closed
        floor.append(((time.monotonic() - T0) / 60, samples[-1][1]))
        left_upstream = await asyncio.to_thread(heygen.open_sessions)
    finally:
        app.stop()
        llm.stop()
        heygen.stop()
    report(minutes, sessions, tally, samples, left_upstream, floor)


def report(minutes: float, sessions: int, tally: Tally, samples: list[tuple], left_upstream: int,
           floor: list[tuple[float, float]]) -> None:
    data = np.array([row for row in samples[:-1] if row[0] <= minutes], dtype=float)  # while traffic ran
    after = data[data[:, 0] >= WARM_UP_MIN]
    closed = samples[-1]
    print(f"\nSoak: {minutes:.0f} min, {sessions} sessions at the cap (HeyGen stand-in), {tally.cycles} "
          f"visitor cycles ({tally.vanished} vanished), {tally.hostile_calls} hostile calls, "
          f"{tally.refused} actions refused with a message (faults, the cap)")
    print(f"\n| measure | at {WARM_UP_MIN} min | at the end | trend after {WARM_UP_MIN} min (per hour) | "
          "spread around it | all closed |")
    print("|---|---|---|---|---|---|")
    for column, name, unit in ((1, "app RSS", "MB"), (2, "threads", ""), (3, "open fds", ""), (5, "app CPU", "%")):
        slope, spread = trend(after[:, 0], after[:, column]) if len(after) else (float("nan"),) * 2
        start = after[0, column] if len(after) else float("nan")
        print(f"| {name} | {start:.0f} {unit} | {data[-1, column]:.0f} {unit} | {slope:+.1f} {unit} | "
              f"{spread:.1f} {unit} | {closed[column]:.0f} {unit} |")
    fps = np.array(tally.windows_fps) if tally.windows_fps else np.array([float("nan")])
    print(f"| legitimate windows' fps | min {fps.min():.1f} | p5 {np.percentile(fps, 5):.1f} | "
          f"median {np.median(fps):.1f} | {len(tally.windows_fps)} windows | |")
    print(f"| upstream sessions open | max {int(data[:, 4].max())} during | | | | {left_upstream} |")
    print(f"| replies with a traceback | {len(tally.tracebacks)} | | | | |")
    lows = np.array(floor) if floor else np.zeros((0, 2))
    kept = lows[lows[:, 0] >= WARM_UP_MIN] if len(lows) else lows
    slope, spread = trend(kept[:, 0], kept[:, 1]) if len(kept) else (float("nan"),) * 2
    print("| app RSS with no session open (floor) | " + ", ".join(f"{m:.0f} min: {r:.0f} MB" for m, r in lows)
          + f" | trend after {WARM_UP_MIN} min {slope:+.1f} MB per hour, spread {spread:.1f} MB | | | |")
    for line in (tally.errors + tally.tracebacks)[:10]:
        print("  !", line)


def main() -> None:
    minutes = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0
    sessions = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    asyncio.run(soak(minutes, sessions))


if __name__ == "__main__":
    main()
