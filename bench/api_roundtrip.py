"""What Gradio's queue adds to a click (python -m bench.api_roundtrip [calls]): the
same read-only endpoint (`status`) called through the queue (join, then the result over
server-sent events, as queued events are) and directly (POST /gradio_api/run/...,
as the page sends events wired with queue=False: Repeat, Talk, Interrupt, the refresh).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
import numpy as np
from gradio_client import Client

from tests.support.app_process import AppProcess

ROOT = Path(__file__).resolve().parent.parent


def timed(call, calls: int) -> np.ndarray:
    times = []
    for _ in range(calls):
        began = time.perf_counter()
        call()
        times.append(1000 * (time.perf_counter() - began))
    return np.array(times)


def main() -> None:
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    app = AppProcess().wait_ready()
    try:
        client = Client(app.url, verbose=False)
        with httpx.Client() as http:
            body = {"data": [], "session_hash": client.session_hash}
            rows = {"through the queue": timed(lambda: client.predict(api_name="/status"), calls),
                    "direct (queue=False)": timed(lambda: http.post(f"{app.url}/gradio_api/run/status", json=body)
                                                  .raise_for_status(), calls)}
        client.close()
    finally:
        app.stop()
    print(f"{'route':>22} | {'p50':>7} {'p95':>7} {'min':>7}   ({calls} calls)")
    for name, t in rows.items():
        print(f"{name:>22} | {np.percentile(t, 50):5.0f}ms {np.percentile(t, 95):5.0f}ms {t.min():5.0f}ms")


if __name__ == "__main__":
    main()
