"""Talk latency on loopback (python -m bench.talk [tries]): the app, an
OpenAI-compatible server streaming real server-sent events, and a headless WebRTC
viewer. The server "thinks" 300 ms, then streams a first sentence and, 10 ms later,
the start of the next one (which is what completes the first sentence for any
splitter). Measured per try: first speech audio at the viewer minus the moment the
first sentence was complete at the server; p50/p95 over the tries.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import numpy as np

from tests.support.app_process import AppProcess
from tests.support.openai_process import OpenAIServerProcess
from tests.support.webrtc_viewer import Viewer

ROOT = Path(__file__).resolve().parent.parent

CHUNKS = ["Hello there, ", "nice to meet you! ", "This", " is the rest of the answer."]


async def measure(app_url: str, llm: OpenAIServerProcess, tries: int) -> list[float]:
    viewer = Viewer(app_url)
    wall_minus_mono = time.time() - time.monotonic()
    gaps = []
    try:
        await viewer.acall("new_session", "ava", "heart", "low")
        await viewer.start()
        await asyncio.sleep(1)
        for _ in range(tries):
            llm.script(chunks=CHUNKS, first_delay_s=0.3)
            t = time.monotonic()
            await viewer.acall("talk", "Hello?", "llm")
            await asyncio.sleep(3.5)  # let it finish speaking
            first_audio = viewer.audio.first_time(lambda rms: rms > 0.02, t)
            sentence_complete = llm.state()["sent_at"][2]  # "This" completes "Hello there, nice to meet you!"
            if first_audio is not None:
                gaps.append(1000 * (first_audio + wall_minus_mono - sentence_complete))
        await viewer.acall("close_session")
    finally:
        await viewer.close()
    return gaps


def main() -> None:
    tries = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    llm = OpenAIServerProcess()
    app = AppProcess({"OPENAI_BASE_URL": llm.base_url, "OPENAI_API_KEY": "bench"}).wait_ready()
    try:
        gaps = asyncio.run(measure(app.url, llm, tries))
    finally:
        app.stop()
        llm.stop()
    print(f"{'tries':>5} | {'first sentence complete -> first speech at the viewer':>52}")
    print(f"{len(gaps):>5} | p50 {np.percentile(gaps, 50):6.0f} ms   p95 {np.percentile(gaps, 95):6.0f} ms   "
          f"min {min(gaps):4.0f} ms   max {max(gaps):4.0f} ms")


if __name__ == "__main__":
    main()
