"""Runs the HeyGen-compatible local server in its own process on a free port."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx

from tests.support.app_process import ROOT, free_port, stop_process

API_KEY = "test-key-not-secret"


class LocalHeyGenProcess:
    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = ROOT / "tests" / ".artifacts" / f"heygen-{self.port}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "avatar_core.standins.heygen.server", "--port", str(self.port),
             "--api-key", API_KEY, *args], cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(self.log_path.read_text())
            try:
                httpx.get(self.url + "/_local/stats", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise TimeoutError("local HeyGen server did not start")

    def open_sessions(self) -> int:
        return httpx.get(self.url + "/_local/stats", timeout=5).json()["open_sessions"]

    def set_fault(self, fault: str | None, slow_s: float = 3.0) -> None:
        httpx.post(self.url + "/_local/fault", json={"fault": fault, "slow_s": slow_s}, timeout=5).raise_for_status()

    def stop(self) -> None:
        stop_process(self.proc, 15)
        self._log.close()
