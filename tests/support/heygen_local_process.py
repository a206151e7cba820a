"""Runs the HeyGen-compatible local server in its own process on a free port."""

from __future__ import annotations

import sys

import httpx

from tests.support.app_process import ServerProcess

API_KEY = "test-key-not-secret"
# The "drop-media" fault stops the media this long after the first frame is sent
# (--drop-media-after). On a loaded 2-core machine the stand-in's default, 1.5 s, can pass
# before the receiver has decoded its first few frames; 4 s leaves room to see media flow
# before it stops. Tests derive their waits from it.
DROP_MEDIA_AFTER_S = 4.0


class LocalHeyGenProcess(ServerProcess):
    name = "heygen"
    description = "local HeyGen server"

    def __init__(self, *args: str, drop_media_after_s: float = DROP_MEDIA_AFTER_S) -> None:
        self.drop_media_after_s = drop_media_after_s
        self._args = args
        super().__init__()
        self.wait_ready(timeout=60, poll_s=0.2)

    def command(self, port: int) -> list[str]:
        return [sys.executable, "-m", "avatar_core.standins.heygen.server", "--port", str(port),
                "--api-key", API_KEY, "--drop-media-after", str(self.drop_media_after_s), *self._args]

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
        """The fault for every later request; slow_s changes the slow fault's delay (--slow-delay)."""
        body = {"fault": fault} if slow_s is None else {"fault": fault, "slow_s": slow_s}
        httpx.post(self.url + "/_local/fault", json=body, timeout=5).raise_for_status()

    def stop(self, timeout: float = 15) -> int:
        return super().stop(timeout)
