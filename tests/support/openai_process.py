"""Runs tests/support/openai_server.py in its own process on a free port."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import httpx

from tests.support.app_process import ROOT, free_port, stop_process


class OpenAIServerProcess:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.support.openai_server", "--port",
                                      str(self.port)], cwd=ROOT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.state()
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise TimeoutError("the OpenAI-compatible test server did not start")

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def script(self, **script: Any) -> None:
        httpx.post(self.url + "/_control/script", json=script, timeout=5).raise_for_status()

    def release(self) -> None:
        httpx.post(self.url + "/_control/release", timeout=5).raise_for_status()

    def state(self) -> dict[str, Any]:
        return httpx.get(self.url + "/_control/state", timeout=5).json()

    def stop(self) -> None:
        stop_process(self.proc, 10)
