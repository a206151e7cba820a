"""Runs the LiveAvatar-compatible local server in its own process on a free port."""

from __future__ import annotations

import sys

import httpx

from tests.support.app_process import ServerProcess

API_KEY = "liveavatar-test-key-not-secret"


class LocalLiveAvatarProcess(ServerProcess):
    name = "liveavatar"
    description = "local LiveAvatar server"

    def __init__(self, *args: str) -> None:
        self._args = args
        super().__init__()
        self.wait_ready(timeout=60, poll_s=0.2)

    def command(self, port: int) -> list[str]:
        return [sys.executable, "-m", "avatar_core.standins.liveavatar.server", "--port", str(port),
                "--api-key", API_KEY, *self._args]

    def listening(self, output: str) -> bool:
        return self.says_listening(output, "Uvicorn running on http://127.0.0.1:")

    def answers(self) -> bool:
        try:
            httpx.get(self.url + "/_local/stats", timeout=1)
            return True
        except httpx.HTTPError:
            return False

    def open_sessions(self) -> int:
        return httpx.get(self.url + "/_local/stats", timeout=5).json()["open_sessions"]

    def set_fault(self, fault: str | None, slow_s: float | None = None) -> None:
        body = {"fault": fault} if slow_s is None else {"fault": fault, "slow_s": slow_s}
        httpx.post(self.url + "/_local/fault", json=body, timeout=5).raise_for_status()
