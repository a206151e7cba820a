"""Runs the LiveAvatar-compatible local server in its own process on a free port."""

from __future__ import annotations

import sys

from tests.support.standin_process import StandInProcess

API_KEY = "liveavatar-test-key-not-secret"


class LocalLiveAvatarProcess(StandInProcess):
    name = "liveavatar"
    description = "local LiveAvatar server"

    def __init__(self, *args: str) -> None:
        self._args = args
        super().__init__()
        self.wait_ready(timeout=60, poll_s=0.2)

    def command(self, port: int) -> list[str]:
        return [sys.executable, "-m", "avatar_core.standins.liveavatar.server", "--port", str(port),
                "--api-key", API_KEY, *self._args]

