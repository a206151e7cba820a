"""A real TURN server for the tests: Debian's coturn (`turnserver`) on loopback, with
one long-term-credential user. Skips the calling test without coturn, except in CI,
which must install it (.ci/run does)."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import struct

import pytest

from tests.support.app_process import ARTIFACTS, ServerProcess, free_port

TURNSERVER = shutil.which("turnserver") or "/usr/bin/turnserver"
USER = "avatar"
REALM = "avatar.test"


def require_coturn() -> None:
    if not os.path.exists(TURNSERVER):
        if os.environ.get("CI"):
            raise RuntimeError("CI needs Debian's coturn for the TURN tests: apt-get install -y coturn")
        pytest.skip("coturn is not installed (apt-get install -y coturn)")


def stun_answers(port: int, timeout: float = 0.5) -> bool:
    """A STUN binding request to 127.0.0.1:port gets a binding success response."""
    request = struct.pack("!HHI12s", 0x0001, 0, 0x2112A442, secrets.token_bytes(12))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(request, ("127.0.0.1", port))
            reply, _ = sock.recvfrom(2048)
        except OSError:
            return False
    return len(reply) >= 20 and struct.unpack("!H", reply[:2])[0] == 0x0101 and reply[8:20] == request[8:20]


class TurnServer(ServerProcess):
    name = "coturn"
    description = "coturn"

    def __init__(self) -> None:
        require_coturn()
        self.password = secrets.token_hex(8)
        super().__init__()
        self.wait_ready(timeout=20, poll_s=0.1)
        self.url = f"turn:127.0.0.1:{self.port}?transport=udp"

    def command(self, port: int) -> list[str]:
        relay_ports = free_port()  # a start for the relay port range; coturn skips ports in use
        return [TURNSERVER, "-n", "--listening-ip=127.0.0.1", f"--listening-port={port}",
                "--relay-ip=127.0.0.1", f"--min-port={relay_ports}", f"--max-port={min(relay_ports + 200, 65535)}",
                "--lt-cred-mech", f"--user={USER}:{self.password}", f"--realm={REALM}", "--allow-loopback-peers",
                "--no-tls", "--no-dtls", "--no-cli", "--no-tcp-relay", "--log-file=stdout", "--verbose",
                "--simple-log", f"--pidfile={ARTIFACTS / f'coturn-{port}.pid'}"]

    def listening(self, output: str) -> bool:
        return self.says_listening(output, "UDP listener opened on: 127.0.0.1:")  # coturn keeps trying if not

    def answers(self) -> bool:
        return stun_answers(self.port)

    def stop(self, timeout: float = 10) -> int:
        return super().stop(timeout)
