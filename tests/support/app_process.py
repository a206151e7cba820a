"""Starts `python app.py` on a free loopback port, as a user would, and stops it; and
the base the other helpers' servers share (ServerProcess)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Self

import httpx

from tests.support.log_lines import holds

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / ".artifacts"
PORT_ATTEMPTS = 5
# what a child says when its port was taken: uvicorn and coturn (errno 98), Gradio
PORT_TAKEN = re.compile(r"address already in use|cannot find empty port", re.IGNORECASE)


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
    """A port free right now. Another process may take it before the child binds it:
    ServerProcess starts the child again on another port when that happens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """A child server on a free loopback port, its output in tests/.artifacts/<name>-<port>.log.

    The port from free_port() is released before the child binds it, so another process
    can take it first. A child that then fails to bind (it exits, or logs it, saying the
    address is in use) is stopped and started again on a new port, up to PORT_ATTEMPTS
    times; and the child is only ready once its own output says it listens on its port,
    so a server that took the port meanwhile is never mistaken for it.
    """

    name = "server"
    description = "the server"
    cwd = ROOT  # where the child runs (a checkout: bench/compare.py runs another one)

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self._env = env
        self._attempts = 0
        self._launch()

    # --- what each server defines ------------------------------------------------------
    def command(self, port: int) -> list[str]:
        raise NotImplementedError

    def environment(self, port: int) -> dict[str, str] | None:
        return self._env

    def listening(self, output: str) -> bool:
        """The child's own output says it listens on self.port."""
        raise NotImplementedError

    def answers(self) -> bool:
        """The server answers its first request (a probe that must not fail loudly)."""
        return True

    # --- shared ------------------------------------------------------------------------
    def _launch(self) -> None:
        self._attempts += 1
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = ARTIFACTS / f"{self.name}-{self.port}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log: IO[bytes] = open(self.log_path, "wb")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(self.command(self.port), cwd=self.cwd, env=self.environment(self.port),
                                     stdout=self._log, stderr=subprocess.STDOUT)

    def _port_taken(self, output: str) -> bool:
        return not self.listening(output) and PORT_TAKEN.search(output) is not None

    def says_listening(self, output: str, text: str) -> bool:
        """`text` followed by this port, and not by more digits, is in `output`."""
        return re.search(re.escape(text) + rf"{self.port}\b", output) is not None

    def wait_ready(self, timeout: float = 120, poll_s: float = 0.3) -> Self:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            exited = self.proc.poll() is not None
            output = self.output()
            if self._port_taken(output) and self._attempts < PORT_ATTEMPTS:
                stop_process(self.proc, 5)  # another process took the port first: try another one
                self._log.close()
                self._launch()
                continue
            if exited:
                self.stop()
                raise RuntimeError(f"{self.description} exited with {self.proc.returncode}:\n{output}")
            if self.listening(output) and self.answers():
                return self
            time.sleep(poll_s)
        output = self.output()
        self.stop()
        raise TimeoutError(f"{self.description} not ready after {timeout} s:\n{output}")

    def lines(self, text: str | re.Pattern[str]) -> list[str]:
        """The log lines holding `text` (a substring, or a pattern searched in each line)."""
        return [line for line in self.output().splitlines() if holds(line, text)]

    def wait_for_output(self, text: str | re.Pattern[str], timeout: float = 60, after: int = 0) -> list[str]:
        """The log lines holding `text` beyond the first `after` of them (count those before
        an action to see only what it wrote), once there is one (or none at the timeout)."""
        deadline = time.monotonic() + timeout
        while not (lines := self.lines(text)[after:]):
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


class AppProcess(ServerProcess):
    name = "app"
    description = "app"

    def __init__(self, env: dict[str, str] | None = None, args: list[str] | None = None,
                 root: Path = ROOT) -> None:
        self._args = args or []
        self.cwd = root  # the checkout whose app.py runs
        super().__init__(env)

    def command(self, port: int) -> list[str]:
        return [sys.executable, "app.py", *self._args]

    def environment(self, port: int) -> dict[str, str]:
        # every test client comes from 127.0.0.1 and stands for many visitors: no per-client
        # limit unless a test sets one; no admission by measured frame rate either (a shared,
        # noisy test machine would refuse at random; tests/test_hardening.py proves it)
        return {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
                "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "MAX_SESSIONS_PER_CLIENT": "200",
                "ADMISSION_MIN_FPS": "0",
                **(self._env or {})}

    def listening(self, output: str) -> bool:
        return self.says_listening(output, "Running on local URL:  http://127.0.0.1:")

    def answers(self) -> bool:
        try:
            return httpx.get(self.url + "/", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False
