"""The app's side of one LiveKit room: a child process (room_worker.py) joins it, and
this link feeds the avatar's frames and audio to the session and carries data both ways.

If the child dies (the SDK aborting, a kill), the session hears that its room ended;
the app and every other session go on. The session token goes to the child over its
stdin (never argv, never its environment) and is blanked from whatever the child logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

from ...media.audio_buffer import AudioBuffer
from ...media.format import AUDIO_RATE
from ...media.frame_history import FrameHistory
from ...settings import SECRET_WORDS
from ...text import json_object
from .errors import RoomError
from .room_worker import AUDIO, EVENT, FRAME, HEADER

log = logging.getLogger(__name__)
PACKAGE_ROOT = Path(__file__).resolve().parents[3]  # where `avatar_core` can be imported from
MAX_AUDIO_BACKLOG = AUDIO_RATE // 10  # 100 ms: older received audio is dropped, keeping lips in sync
MAX_EVENT_BYTES = 64 * 1024
MAX_AUDIO_MESSAGE_BYTES = AUDIO_RATE * 2  # 1 s of 16-bit audio: the child sends 10 ms at a time
MAX_EVENTS_PER_S = 50  # data from the room beyond this is dropped: a flood must not load the loop
MAX_LOG_LINE = 300
MAX_LOG_READ = 4096
LEAVE_GRACE_S = 3.0  # a child that has not left by then is killed
EventHandler = Callable[[dict[str, Any]], None]


class RoomLink:
    def __init__(self, size: tuple[int, int], audio: AudioBuffer, on_event: EventHandler) -> None:
        """`on_event(event)` runs on the event loop: {"kind": "data", "topic", "payload"} while
        connected, and one {"kind": "ended", "message"} when the room or the child ends."""
        self._size, self._audio, self._on_event = size, audio, on_event
        self.frames = FrameHistory()
        self._child: subprocess.Popen[bytes] | None = None
        self._threads: list[threading.Thread] = []
        self._hidden: list[str] = []
        self._outcome: asyncio.Future[dict[str, Any]] | None = None  # connected or failed
        self._connected = self._ended = self._closing = False

    async def connect(self, url: str, token: str, timeout_s: float) -> None:
        """Join the room; RoomError with a reason when it cannot be joined within `timeout_s`."""
        loop = asyncio.get_running_loop()
        self._hidden = [token]
        self._outcome = loop.create_future()
        child = await asyncio.to_thread(_spawn)
        if self._closing:  # closed while the child was starting
            await asyncio.to_thread(_end, child)
            raise RoomError("The session was closed while it was connecting.")
        self._child = child
        assert child.stdin is not None and child.stdout is not None and child.stderr is not None
        os.set_blocking(child.stdin.fileno(), False)  # a child that stops reading must not stall the loop
        self._send({"url": url, "token": token, "width": self._size[0], "height": self._size[1],
                    "connect_timeout_s": timeout_s})
        self._threads = [threading.Thread(target=self._read_media, args=(child.stdout, loop), daemon=True,
                                          name="liveavatar-room"),
                         threading.Thread(target=self._relay_log, args=(child.stderr,), daemon=True,
                                          name="liveavatar-room-log")]
        for thread in self._threads:
            thread.start()
        try:  # the child gives up at timeout_s itself; the margin covers its start-up
            outcome = await asyncio.wait_for(asyncio.shield(self._outcome), timeout_s + 10)
        except TimeoutError:
            outcome = {"kind": "failed", "message": "no answer from the room process"}
        if self._closing:
            raise RoomError("The session was closed while it was connecting.")  # close() ends the child
        if outcome["kind"] != "connected" or self._ended:
            log.warning("LiveKit room not joined: %s", self._hide(str(outcome.get("message", "it ended"))))
            raise RoomError(f"Could not join LiveAvatar's LiveKit room within {timeout_s:.0f} s. A firewall, "
                            "VPN or proxy can block WebRTC; check the network.")
        self.frames.restart()
        self._connected = True

    def publish(self, topic: str, payload: dict[str, Any]) -> None:
        """Data to the room (reliable): LiveAvatar's agent-control commands."""
        if not self._connected or self._ended:
            raise RoomError("LiveAvatar's room is not connected.")
        self._send({"op": "publish", "topic": topic, "payload": json.dumps(payload)})

    def _send(self, command: dict[str, Any]) -> None:
        """A line to the child, never blocking: a child whose pipe is full has stopped
        reading (wedged), so it is killed and its session hears that the room ended."""
        child = self._child
        if child is None or child.stdin is None or child.poll() is not None:
            return
        line = (json.dumps(command) + "\n").encode()
        try:
            written = os.write(child.stdin.fileno(), line)
        except BlockingIOError:
            written = 0
        except (OSError, ValueError):
            return  # gone: its reader reports the end
        if written < len(line):
            log.warning("the room process stopped reading its commands: ending it")
            child.kill()

    # --- the child's output, in threads ------------------------------------------------------
    def _read_media(self, pipe: IO[bytes], loop: asyncio.AbstractEventLoop) -> None:
        width, height = self._size
        limits = {FRAME: width * height * 3, AUDIO: MAX_AUDIO_MESSAGE_BYTES, EVENT: MAX_EVENT_BYTES}
        events = EventBudget()
        try:
            while len(header := _read_exactly(pipe, HEADER.size)) == HEADER.size:
                kind, length = HEADER.unpack(header)
                if length > limits.get(kind, -1) or (kind == FRAME and length != limits[FRAME]):
                    log.warning("the room process broke its protocol: ending it")
                    break
                payload = _read_exactly(pipe, length)
                if len(payload) < length:
                    break
                if kind == FRAME:
                    self.frames.add(np.frombuffer(payload, np.uint8).reshape(height, width, 3))
                elif kind == AUDIO and length % 2 == 0:
                    self._audio.push(np.frombuffer(payload, np.int16).astype(np.float32) / 32768.0)
                    self._audio.trim_to(MAX_AUDIO_BACKLOG)
                elif kind == EVENT and events.allows():
                    event = json_object(bytes(payload))
                    if event is not None:
                        loop.call_soon_threadsafe(self._event, event)
        except Exception:  # whatever went wrong, the session must hear that its room ended
            log.exception("reading the room process failed")
        child = self._child
        if child is not None:  # its output ended: it is exiting (its status tells how), or it broke the protocol
            try:
                child.wait(0.5)
            except subprocess.TimeoutExpired:
                child.kill()
        with contextlib.suppress(RuntimeError):  # the loop may be closed at shutdown
            loop.call_soon_threadsafe(self._event, {"kind": "ended", "reason": "the room process ended"})

    def _relay_log(self, pipe: IO[bytes]) -> None:
        """The child's log lines, cut and with the session token blanked, at debug level
        (the SDK is chatty); lines that look like errors at warning."""
        with contextlib.suppress(OSError, ValueError):
            while raw := pipe.readline(MAX_LOG_READ):
                line = self._hide(raw.decode("utf-8", "replace").rstrip())[:MAX_LOG_LINE]
                if line:
                    level = logging.WARNING if ("ERROR" in line or "panic" in line) else logging.DEBUG
                    log.log(level, "room process: %s", line)

    def _hide(self, text: str) -> str:
        for secret in self._hidden:
            text = text.replace(secret, "(hidden)")
        return text

    # --- on the loop ---------------------------------------------------------------------------
    def _event(self, event: dict[str, Any]) -> None:
        kind = event.get("kind")
        if kind == "ended":
            already, self._ended = self._ended, True
            if self._connected and not already and not self._closing:
                self._on_event({"kind": "ended", "message": self._why_ended()})
        if self._outcome is not None and not self._outcome.done() and kind in ("connected", "failed", "ended"):
            self._outcome.set_result(event if kind != "ended" else {"kind": "failed", "message": "ended"})
            return
        if self._connected and not self._ended and kind in ("data", "publish_failed"):
            self._on_event(event)

    def _why_ended(self) -> str:
        child = self._child
        code = child.poll() if child is not None else None
        if code is not None and code < 0:
            return f"The connection to LiveAvatar's room crashed (signal {-code}); the app goes on."
        return "LiveAvatar's room closed (the session ended there, or the network dropped)."

    @property
    def connected(self) -> bool:
        return self._connected and not self._ended

    async def close(self) -> None:
        """Leave the room and end the child (killed if it hangs); idempotent."""
        self._closing = True
        child, self._child = self._child, None
        if child is None:
            return
        # joined: its stdin closed, it leaves the room; still joining: nothing to leave, end it now
        await asyncio.to_thread(_end, child, LEAVE_GRACE_S if self._connected else 0.0)
        for thread in self._threads:
            await asyncio.to_thread(thread.join, 2.0)
        for pipe in (child.stdout, child.stderr):
            if pipe is not None:
                pipe.close()


class EventBudget:
    """A token bucket (reader thread only): at most MAX_EVENTS_PER_S, bursts of as many."""

    def __init__(self) -> None:
        self._tokens, self._at = float(MAX_EVENTS_PER_S), time.monotonic()

    def allows(self) -> bool:
        now = time.monotonic()
        self._tokens = min(MAX_EVENTS_PER_S, self._tokens + (now - self._at) * MAX_EVENTS_PER_S)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


def _spawn() -> subprocess.Popen[bytes]:
    # the child needs none of the app's secrets
    env = {k: v for k, v in os.environ.items() if not any(word in k.upper() for word in SECRET_WORDS)}
    return subprocess.Popen([sys.executable, "-m", "avatar_core.providers.liveavatar.room_worker"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=PACKAGE_ROOT, env=env)


def _end(child: subprocess.Popen[bytes], grace_s: float = LEAVE_GRACE_S) -> None:
    with contextlib.suppress(OSError, ValueError):
        if child.stdin is not None:
            child.stdin.close()  # end of file: the child leaves
    try:
        child.wait(grace_s)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def _read_exactly(pipe: IO[bytes], size: int) -> bytearray:
    """`size` bytes, or fewer at the end of the pipe (a bytearray: frames made from it are writable)."""
    buffer = bytearray(size)
    view, got = memoryview(buffer), 0
    while got < size:
        n = pipe.readinto(view[got:])  # type: ignore[attr-defined]
        if not n:
            return buffer[:got]
        got += n
    return buffer
