"""Start-up time (python -m bench.startup [runs]): `python app.py` to the page being
served (HTTP 200 at /), and to the background warm-up being done (key compiled,
sprites drawn, voices loaded: the first New and Repeat are then quick). "Cold" runs
use an empty numba cache, as on a fresh clone; "warm" runs reuse the cache."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tests.support.app_process import AppProcess

ROOT = Path(__file__).resolve().parent.parent


def one_run(env: dict[str, str]) -> tuple[float, float]:
    began = time.monotonic()
    app = AppProcess(env)
    try:
        app.wait_ready(poll_s=0.05)
        served = time.monotonic() - began
        if not app.wait_for_output("warm-up done in", timeout=300):
            raise TimeoutError("no warm-up line in the app's log")
        return served, time.monotonic() - began
    finally:
        app.stop()


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    shared_cache = tempfile.mkdtemp(prefix="numba-cache-")
    one_run({"NUMBA_CACHE_DIR": shared_cache})  # fills the cache (and the OS file cache) once
    results = {
        "cold (empty numba cache)": [one_run({"NUMBA_CACHE_DIR": tempfile.mkdtemp()}) for _ in range(runs)],
        "warm (numba cache kept)": [one_run({"NUMBA_CACHE_DIR": shared_cache}) for _ in range(runs)],
    }
    print(f"{'start':>26} | {'page served (median)':>20} | {'warm-up done (median)':>21}")
    for name, times in results.items():
        served, warm = np.median(times, axis=0)
        print(f"{name:>26} | {served:18.1f} s | {warm:19.1f} s")


if __name__ == "__main__":
    main()
