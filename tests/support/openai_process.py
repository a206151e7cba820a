"""Runs tests/support/openai_server.py in its own process on a free port."""

from __future__ import annotations

import json
import sys
from typing import Any

import httpx

from tests.support.app_process import ServerProcess


class OpenAIServerProcess(ServerProcess):
    name = "openai"
    description = "the OpenAI-compatible test server"

    def __init__(self) -> None:
        super().__init__()
        self.wait_ready(timeout=30, poll_s=0.1)

    def command(self, port: int) -> list[str]:
        return [sys.executable, "-m", "tests.support.openai_server", "--port", str(port)]

    def listening(self, output: str) -> bool:
        return self.says_listening(output, "Uvicorn running on http://127.0.0.1:")

    def answers(self) -> bool:
        try:
            self.state()
            return True
        except httpx.HTTPError:
            return False

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def script(self, **script: Any) -> None:
        # escaped JSON, so a script may hold what UTF-8 cannot (a lone surrogate, as a hostile server sends)
        httpx.post(self.url + "/_control/script", content=json.dumps(script), timeout=5,
                   headers={"content-type": "application/json"}).raise_for_status()

    def release(self) -> None:
        httpx.post(self.url + "/_control/release", timeout=5).raise_for_status()

    def state(self) -> dict[str, Any]:
        return httpx.get(self.url + "/_control/state", timeout=5).json()

    def stop(self, timeout: float = 10) -> int:
        return super().stop(timeout)
