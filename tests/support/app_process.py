"""Starts `python app.py` on a free loopback port, as a user would, and stops it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def stop_process(proc: subprocess.Popen, timeout: float = 20) -> int:
    """Terminate (SIGTERM, so servers can close their sessions), then kill if it hangs."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppProcess:
    def __init__(self, env: dict[str, str] | None = None, args: list[str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = ROOT / "tests" / ".artifacts" / f"app-{self.port}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        full_env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(self.port),
                    "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", **(env or {})}
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen([sys.executable, "app.py", *(args or [])], cwd=ROOT, env=full_env,
                                     stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 120, poll_s: float = 0.3) -> AppProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"app exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(self.url + "/", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(poll_s)
        output = self.output()
        self.stop()
        raise TimeoutError(f"app not ready after {timeout} s:\n{output}")

    def wait_for_output(self, text: str, timeout: float = 60) -> list[str]:
        """The app's log lines holding `text`, once there is one (or none at the timeout)."""
        deadline = time.monotonic() + timeout
        while not (lines := [line for line in self.output().splitlines() if text in line]):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                break
            time.sleep(0.1)
        return lines

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 20) -> int:
        code = stop_process(self.proc, timeout)
        self._log.close()
        return code
