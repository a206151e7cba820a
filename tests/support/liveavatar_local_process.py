"""Runs the LiveAvatar-compatible local server in its own process on a free port."""

from __future__ import annotations

import sys

import httpx

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


    def drop(self, what: str) -> int:
        """Cut every open room's connections ("room") or LITE's sockets ("socket")."""
        reply = httpx.post(self.url + "/_local/drop", json={"what": what}, timeout=5)
        reply.raise_for_status()
        return reply.json()["dropped"]

    def issued_secrets(self) -> list[str]:
        """The session and socket tokens the stand-in handed out (recent ones)."""
        return httpx.get(self.url + "/_local/stats", timeout=5).json()["issued_secrets"]
