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
{"kind": "connected" | "data" | "ended" | "failed", ...}).
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import struct
import sys
import threading
from typing import IO, Any

HEADER = struct.Struct("!cI")
FRAME, AUDIO, EVENT = b"F", b"A", b"E"
AUDIO_RATE = 24_000  # media/format.py's rate (not imported: the child stays small)
MAX_OUTBOX = 64  # messages waiting for the parent; beyond it the newest is dropped, never the child blocked
MAX_COMMAND_BYTES = 64 * 1024
WARM_UP_TOPIC = "warm-up"


class Outbox:
    """A bounded queue to the parent, written by a thread, so a slow parent never stalls
    the SDK's event loop."""

    def __init__(self, pipe: IO[bytes]) -> None:
        self._pipe = pipe
        self._queue: queue.Queue[bytes | None] = queue.Queue(MAX_OUTBOX)
        self.dropped = 0
        self._thread = threading.Thread(target=self._write_forever, name="outbox", daemon=True)
        self._thread.start()

    def put(self, kind: bytes, payload: bytes, must: bool = False) -> None:
        message = HEADER.pack(kind, len(payload)) + payload
        try:
            if must:  # an event: worth a short wait
                self._queue.put(message, timeout=1.0)
            else:  # media: the next frame is as good
                self._queue.put_nowait(message)
        except queue.Full:
            self.dropped += 1

    def event(self, **event: Any) -> None:
        self.put(EVENT, json.dumps(event).encode(), must=True)

    def _write_forever(self) -> None:
        try:
            while (message := self._queue.get()) is not None:
                self._pipe.write(message)
                self._pipe.flush()
        except (BrokenPipeError, OSError):
            pass  # the parent is gone: the commands' end of file ends the child

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=2.0)


async def run_room(config: dict[str, Any], outbox: Outbox, commands: asyncio.Queue[dict[str, Any] | None]) -> None:
    import av
    import numpy as np
    from livekit import rtc

    width, height = int(config["width"]), int(config["height"])
    room = rtc.Room()
    readers: set[asyncio.Task[None]] = set()
    ended = asyncio.Event()

    async def read_video(track: rtc.Track) -> None:
        async for event in rtc.VideoStream(track, format=rtc.VideoBufferType.RGB24):
            frame = event.frame
            rgb = np.frombuffer(frame.data, np.uint8).reshape(frame.height, frame.width, 3)
            scaled = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(width, height, format="bgr24")
            outbox.put(FRAME, scaled.to_ndarray().tobytes())

    async def read_audio(track: rtc.Track) -> None:
        async for event in rtc.AudioStream(track, sample_rate=AUDIO_RATE, num_channels=1):
            outbox.put(AUDIO, bytes(event.frame.data))

    @room.on("track_subscribed")
    def on_track(track: rtc.Track, _publication: Any, participant: rtc.RemoteParticipant) -> None:
        reader = read_video if track.kind == rtc.TrackKind.KIND_VIDEO else read_audio
        task = asyncio.ensure_future(reader(track))
        readers.add(task)
        task.add_done_callback(readers.discard)

    @room.on("data_received")
    def on_data(packet: rtc.DataPacket) -> None:
        outbox.event(kind="data", topic=packet.topic or "", payload=bytes(packet.data).decode("utf-8", "replace"))

    @room.on("disconnected")
    def on_disconnected(reason: Any) -> None:
        outbox.event(kind="ended", reason=str(reason))
        ended.set()

    try:
        await asyncio.wait_for(room.connect(config["url"], config["token"]), float(config["connect_timeout_s"]))
    except Exception as exc:  # a timeout, a refused token, an unreachable server
        outbox.event(kind="failed", message=f"{type(exc).__name__}: {str(exc)[:200]}")
        return  # disconnect() after a failed connect is one of the SDK's abort paths: not called
    # the SDK negotiates its publishing connection on the first data sent: done now, the
    # first Repeat does not wait for it (no agent listens on this topic)
    await room.local_participant.publish_data(b"{}", topic=WARM_UP_TOPIC, reliable=True)
    outbox.event(kind="connected")
    room_ended = asyncio.ensure_future(ended.wait())
    try:
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
                await room.local_participant.publish_data(str(command.get("payload", "")),
                                                          topic=str(command.get("topic", "")), reliable=True)
    finally:
        room_ended.cancel()
        for task in list(readers):
            task.cancel()
        if not ended.is_set():
            await room.disconnect()


def read_commands(stdin: IO[str], loop: asyncio.AbstractEventLoop,
                  commands: asyncio.Queue[dict[str, Any] | None]) -> None:
    """Thread: command lines from the parent; end of file (the parent is gone) means leave."""
    for line in stdin:
        if len(line) > MAX_COMMAND_BYTES:
            continue
        try:
            command = json.loads(line)
        except ValueError:
            continue
        if isinstance(command, dict):
            loop.call_soon_threadsafe(commands.put_nowait, None if command.get("op") == "leave" else command)
    loop.call_soon_threadsafe(commands.put_nowait, None)


def main() -> None:
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
