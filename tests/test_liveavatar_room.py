"""The LiveAvatar stand-in's room, joined by the unmodified `livekit` SDK over loopback:
the avatar participant's VP8 video and Opus audio arrive, agent-control data makes it
speak (FULL) and agent-response events come back; LITE's WebSocket takes our audio."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import numpy as np
import pytest
import websockets
from livekit import rtc

from avatar_core.providers.liveavatar.client import LiveAvatarClient
from tests.support.liveavatar_local_process import API_KEY, LocalLiveAvatarProcess

pytestmark = pytest.mark.integration  # starts a stand-in


@pytest.fixture(scope="module")
def server():
    server = LocalLiveAvatarProcess("--max-sessions", "2")
    yield server
    server.stop()


class Received:
    def __init__(self) -> None:
        self.frames: list[tuple[float, np.ndarray]] = []
        self.audio: list[tuple[float, float]] = []  # (arrival, RMS of a 10 ms chunk)
        self.events: list[dict] = []
        self.tasks: list[asyncio.Task] = []

    async def video(self, track: rtc.Track) -> None:
        async for event in rtc.VideoStream(track):
            frame = event.frame.convert(rtc.VideoBufferType.RGB24)
            pixels = np.frombuffer(frame.data, np.uint8).reshape(frame.height, frame.width, 3)
            self.frames.append((time.monotonic(), pixels.copy()))

    async def sound(self, track: rtc.Track) -> None:
        async for event in rtc.AudioStream(track, sample_rate=24_000, num_channels=1):
            pcm = np.frombuffer(event.frame.data, np.int16).astype(np.float32) / 32768
            self.audio.append((time.monotonic(), float(np.sqrt(np.mean(pcm**2))) if pcm.size else 0.0))

    def loudest(self, since: float) -> float:
        return max((rms for t, rms in self.audio if t >= since), default=0.0)


async def until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def joined(server, mode: str) -> tuple[LiveAvatarClient, rtc.Room, Received, object]:
    client = LiveAvatarClient(API_KEY, server.url, 10.0)
    token = await client.create_token(mode, "ava", "heart")  # type: ignore[arg-type]
    started = await client.start(token)
    room, received = rtc.Room(), Received()

    @room.on("track_subscribed")
    def _(track: rtc.Track, publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant) -> None:
        reader = received.video if track.kind == rtc.TrackKind.KIND_VIDEO else received.sound
        received.tasks.append(asyncio.ensure_future(reader(track)))

    @room.on("data_received")
    def _(packet: rtc.DataPacket) -> None:
        if packet.topic == "agent-response":
            received.events.append(json.loads(packet.data))

    await room.connect(started.livekit_url, started.livekit_client_token)
    return client, room, received, started


async def leave(client: LiveAvatarClient, room: rtc.Room, received: Received, started) -> None:
    await room.disconnect()
    for task in received.tasks:
        task.cancel()
    await client.stop(started.session_id)
    await client.aclose()


def test_full_mode_joins_receives_the_avatar_and_speaks_on_command(server):
    async def body() -> None:
        client, room, received, started = await joined(server, "FULL")
        try:
            assert await until(lambda: len(received.frames) > 50 and len(received.audio) > 50, 20)
            t0, _ = received.frames[0]
            fps = (len(received.frames) - 1) / (received.frames[-1][0] - t0)
            assert fps > 20, fps
            r, g, b = received.frames[-1][1][5, 5].astype(int)  # the corner: green screen
            assert g > 150 and r < 100 and b < 100, (r, g, b)
            quiet = received.loudest(time.monotonic() - 1)
            said = time.monotonic()
            command = {"event_id": "e-1", "event_type": "avatar.speak_text", "text": "Hello from the room test."}
            await room.local_participant.publish_data(json.dumps(command), topic="agent-control", reliable=True)
            kinds = lambda: [e["event_type"] for e in received.events]  # noqa: E731
            assert await until(lambda: "avatar.speak_ended" in kinds(), 20), received.events
            assert kinds()[:3] == ["avatar.transcription", "avatar.speak_started", "avatar.speak_ended"]
            assert received.events[0]["text"] == "Hello from the room test."
            assert all(e["session_id"] == started.session_id for e in received.events)
            assert received.loudest(said) > max(0.02, 5 * quiet)  # it was heard
        finally:
            await leave(client, room, received, started)
        assert server.open_sessions() == 0

    asyncio.run(body())


def test_lite_mode_speaks_the_audio_sent_over_its_websocket(server):
    async def body() -> None:
        client, room, received, started = await joined(server, "LITE")
        try:
            assert started.ws_url
            assert await until(lambda: len(received.audio) > 50, 20)
            quiet = received.loudest(time.monotonic() - 1)
            async with websockets.connect(started.ws_url) as ws:
                assert json.loads(await ws.recv()) == {"type": "session.state_updated", "state": "connected"}
                t = np.arange(24_000) / 24_000  # 1 s of a 220 Hz tone, as 16-bit PCM
                pcm = (0.3 * np.sin(2 * np.pi * 220 * t) * 32767).astype(np.int16)
                sent = time.monotonic()
                await ws.send(json.dumps({"type": "agent.speak", "audio": base64.b64encode(pcm.tobytes()).decode()}))
                await ws.send(json.dumps({"type": "agent.speak_end", "event_id": "s-1"}))
                replies = [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(2)]
            assert [r["type"] for r in replies] == ["agent.speak_started", "agent.speak_ended"]
            assert received.loudest(sent) > max(0.1, 5 * quiet)  # our tone, through the room
        finally:
            await leave(client, room, received, started)
        assert server.open_sessions() == 0

    asyncio.run(body())
