"""The child process that joins one LiveAvatar session's LiveKit room (`python -m
avatar_core.providers.liveavatar.room_worker`, started by room_link.py).

The `livekit` SDK is a native library that can abort its process on some failure paths
(../shared/reference/liveavatar-api.md): in a child of its own, a failing room ends one
session, never the app. The child also decodes and scales the avatar's video off the
app's interpreter.

Parent -> child, stdin, one JSON object per line: first the room
{"url", "token", "width", "height", "connect_timeout_s"}, then commands
{"op": "publish", "topic", "payload"} and {"op": "leave"}. End of stdin means leave.
Child -> parent, the protocol pipe: messages of `HEADER` (kind, length) + payload:
FRAME (BGR bytes, width x height), AUDIO (16-bit mono PCM at 24 kHz), EVENT (JSON:
{"kind": "connected" | "data" | "publish_failed" | "ended" | "failed", ...}).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import struct
import sys
import threading
from collections import deque
from typing import IO, Any

HEADER = struct.Struct("!cI")
FRAME, AUDIO, EVENT = b"F", b"A", b"E"
AUDIO_RATE = 24_000  # media/format.py's rate (not imported: the child stays small)
MAX_SMALL = 256  # audio chunks (10 ms each) and events waiting for the parent; beyond it they are dropped
MAX_COMMAND_BYTES = 64 * 1024
MAX_MESSAGE_CHARS = 200
WARM_UP_TOPIC = "warm-up"
WARM_UP_TIMEOUT_S = 5.0
VIDEO_QUEUE, AUDIO_QUEUE = 2, 50  # the SDK's own stream queues (0 would be unbounded)


class Outbox:
    """What goes to the parent, written by a thread so a slow parent never stalls the SDK's
    event loop: the newest frame only (an older one is replaced), and a bounded queue of
    audio and events, written first. Nothing here ever blocks the caller."""

    def __init__(self, pipe: IO[bytes]) -> None:
        self._pipe = pipe
        self._small: deque[bytes] = deque()
        self._frame: bytes | None = None
        self._ready = threading.Condition()
        self._closed = False
        self.dropped = 0
        self._thread = threading.Thread(target=self._write_forever, name="outbox", daemon=True)
        self._thread.start()

    def frame(self, payload: bytes) -> None:
        with self._ready:
            self.dropped += self._frame is not None
            self._frame = HEADER.pack(FRAME, len(payload)) + payload
            self._ready.notify()

    def put(self, kind: bytes, payload: bytes) -> None:
        with self._ready:
            if len(self._small) >= MAX_SMALL:
                self.dropped += 1
                return
            self._small.append(HEADER.pack(kind, len(payload)) + payload)
            self._ready.notify()

    def event(self, **event: Any) -> None:
        self.put(EVENT, json.dumps(event).encode())

    def _write_forever(self) -> None:
        try:
            while True:
                with self._ready:
                    while not (self._small or self._frame or self._closed):
                        self._ready.wait()
                    if not (self._small or self._frame):
                        return  # closed, and everything written
                    messages, self._small = list(self._small), deque()
                    if self._frame is not None:
                        messages.append(self._frame)
                        self._frame = None
                self._pipe.write(b"".join(messages))
                self._pipe.flush()
        except (BrokenPipeError, OSError):
            pass  # the parent is gone: the commands' end of file ends the child

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify()
        self._thread.join(timeout=2.0)


async def run_room(config: dict[str, Any], outbox: Outbox, commands: asyncio.Queue[dict[str, Any] | None]) -> None:
    import av
    import numpy as np
    from livekit import rtc

    width, height = int(config["width"]), int(config["height"])
    token = str(config["token"])
    room = rtc.Room()
    readers: set[asyncio.Task[None]] = set()
    ended = asyncio.Event()

    def failed(kind: str, exc: BaseException) -> None:
        message = f"{type(exc).__name__}: {exc}".replace(token, "(hidden)")  # blanked before it is cut
        outbox.event(kind=kind, message=message[:MAX_MESSAGE_CHARS])

    async def read_video(track: rtc.Track) -> None:
        async for event in rtc.VideoStream(track, format=rtc.VideoBufferType.RGB24, capacity=VIDEO_QUEUE):
            frame = event.frame
            rgb = np.frombuffer(frame.data, np.uint8).reshape(frame.height, frame.width, 3)
            scaled = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(width, height, format="bgr24")
            outbox.frame(scaled.to_ndarray().tobytes())

    async def read_audio(track: rtc.Track) -> None:
        async for event in rtc.AudioStream(track, sample_rate=AUDIO_RATE, num_channels=1, capacity=AUDIO_QUEUE):
            outbox.put(AUDIO, bytes(event.frame.data))

    @room.on("track_subscribed")
    def on_track(track: rtc.Track, _publication: Any, participant: rtc.RemoteParticipant) -> None:
        reader = read_video if track.kind == rtc.TrackKind.KIND_VIDEO else read_audio
        task = asyncio.ensure_future(reader(track))
        readers.add(task)
        task.add_done_callback(readers.discard)

    @room.on("data_received")
    def on_data(packet: rtc.DataPacket) -> None:
        if packet.topic != WARM_UP_TOPIC:
            outbox.event(kind="data", topic=packet.topic or "", payload=bytes(packet.data).decode("utf-8", "replace"))

    @room.on("disconnected")
    def on_disconnected(reason: Any) -> None:
        outbox.event(kind="ended", reason=str(reason))
        ended.set()

    try:
        await asyncio.wait_for(room.connect(config["url"], token), float(config["connect_timeout_s"]))
    except Exception as exc:  # a timeout, a refused token, an unreachable server
        failed("failed", exc)
        return  # disconnect() after a failed connect is one of the SDK's abort paths: not called
    room_ended = asyncio.ensure_future(ended.wait())
    try:
        # the SDK negotiates its publishing connection on the first data sent: done now, the
        # first Repeat does not wait for it (no agent listens on this topic)
        try:
            await asyncio.wait_for(room.local_participant.publish_data(b"{}", topic=WARM_UP_TOPIC, reliable=True),
                                   WARM_UP_TIMEOUT_S)
        except Exception as exc:
            failed("failed", exc)
            return
        outbox.event(kind="connected")
        while True:
            waiter = asyncio.ensure_future(commands.get())
            await asyncio.wait({waiter, room_ended}, return_when=asyncio.FIRST_COMPLETED)
            if not waiter.done():
                waiter.cancel()
                break  # the room ended
            command = waiter.result()
            if command is None:  # leave, or the parent is gone
                break
            if command.get("op") == "publish":
                try:
                    await room.local_participant.publish_data(str(command.get("payload", "")),
                                                              topic=str(command.get("topic", "")), reliable=True)
                except Exception as exc:  # one lost command, not the room
                    failed("publish_failed", exc)
    finally:
        room_ended.cancel()
        for task in list(readers):
            task.cancel()
        if not ended.is_set():
            await room.disconnect()


def read_commands(stdin: IO[str], loop: asyncio.AbstractEventLoop,
                  commands: asyncio.Queue[dict[str, Any] | None]) -> None:
    """Thread: command lines from the parent; end of file (the parent is gone) means leave."""
    while line := stdin.readline(MAX_COMMAND_BYTES):
        if not line.endswith("\n"):  # longer than any command: skip the rest of it
            while (rest := stdin.readline(MAX_COMMAND_BYTES)) and not rest.endswith("\n"):
                pass
            continue
        try:
            command = json.loads(line)
        except ValueError:
            continue
        if isinstance(command, dict):
            loop.call_soon_threadsafe(commands.put_nowait, None if command.get("op") == "leave" else command)
    loop.call_soon_threadsafe(commands.put_nowait, None)


def end_with_parent() -> None:
    """Linux: this process gets SIGTERM when the app dies, whatever the SDK is doing."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the parent died before that took effect
            os._exit(0)


def main() -> None:
    end_with_parent()
    # the protocol gets stdout's pipe to itself; anything a library prints goes to stderr
    pipe = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    outbox = Outbox(pipe)
    config = json.loads(sys.stdin.readline() or "{}")

    async def run() -> None:
        commands: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        threading.Thread(target=read_commands, args=(sys.stdin, asyncio.get_running_loop(), commands),
                         name="commands", daemon=True).start()
        await run_room(config, outbox, commands)

    try:
        asyncio.run(run())
    finally:
        outbox.close()


if __name__ == "__main__":
    main()
