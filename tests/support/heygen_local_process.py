"""Runs the HeyGen-compatible local server in its own process on a free port."""

from __future__ import annotations

import sys

from tests.support.standin_process import StandInProcess

API_KEY = "test-key-not-secret"
# The "drop-media" fault stops the media this long after the first frame is sent
# (--drop-media-after). On a loaded 2-core machine the stand-in's default, 1.5 s, can pass
# before the receiver has decoded its first few frames; 4 s leaves room to see media flow
# before it stops. Tests derive their waits from it.
DROP_MEDIA_AFTER_S = 4.0


class LocalHeyGenProcess(StandInProcess):
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
