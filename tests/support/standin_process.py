"""What the local stand-ins share as processes: a Starlette app under uvicorn with the
`/_local/stats` (open sessions) and `/_local/fault` (fault for every later request) hooks."""

from __future__ import annotations

import httpx

from tests.support.app_process import ServerProcess


class StandInProcess(ServerProcess):
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

    def speech_started_at(self) -> list[float]:
        """Wall-clock times at which the stand-in's avatar began sending speech (recent ones)."""
        return httpx.get(self.url + "/_local/stats", timeout=5).json()["speech_started_at"]

    def set_fault(self, fault: str | None, slow_s: float | None = None) -> None:
        """The fault for every later request; slow_s changes the slow fault's delay."""
        body = {"fault": fault} if slow_s is None else {"fault": fault, "slow_s": slow_s}
        httpx.post(self.url + "/_local/fault", json=body, timeout=5).raise_for_status()

    def stop(self, timeout: float = 15) -> int:
        return super().stop(timeout)
