"""The HeyGen client against the HeyGen-compatible local server, over loopback HTTP
and real WebRTC: request and response shapes, every typed error, limits, media."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from avatar_core.providers.base import Choices
from avatar_core.providers.heygen import errors
from avatar_core.providers.heygen.client import HeyGenClient
from avatar_core.providers.heygen.service import HeyGenService
from tests.support.controllers import started_controller
from tests.support.heygen_local_process import API_KEY, LocalHeyGenProcess
from tests.test_stream_integration import wait_until

pytestmark = pytest.mark.integration  # starts the app, a stand-in or a browser


@pytest.fixture(scope="module")
def server():
    server = LocalHeyGenProcess("--idle-timeout", "120")
    yield server
    server.stop()


def run(coro):
    return asyncio.run(coro)


def client(server, **kwargs) -> HeyGenClient:
    return HeyGenClient(kwargs.pop("api_key", API_KEY), server.url, kwargs.pop("timeout_s", 15.0), **kwargs)


def test_envelopes_lists_and_stop(server):
    async def body():
        c = client(server)
        try:
            token = await c.create_token()
            assert isinstance(token, str) and len(token) > 10
            avatars, voices = await c.list_avatars(), await c.list_voices()
            assert {"ava", "leo", "mira"} <= {a["avatar_id"] for a in avatars}
            assert "heart" in {v["voice_id"] for v in voices}
            new = await c.new_session("low", "leo", "heart", emotion="Friendly", activity_idle_timeout_s=60)
            assert new.sdp["type"] == "offer" and "m=video" in new.sdp["sdp"] and "m=audio" in new.sdp["sdp"]
            assert "m=application" in new.sdp["sdp"] and new.duration_limit_s == 600
            assert [s["session_id"] for s in await c.list_sessions()] == [new.session_id]
            await c.keep_alive(new.session_id)
            talk = await c.task(new.session_id, "What are you?", "talk", "async")
            assert talk.task_id and talk.duration_ms > 0
            await c.stop(new.session_id)
            with pytest.raises(errors.SessionClosedError):
                await c.task(new.session_id, "anyone there?")
            assert server.open_sessions() == 0
        finally:
            await c.aclose()

    run(body())


def test_raw_shapes_accepted_loosely(server):
    """avatar_name instead of avatar_id, "chat" for talk, either auth header."""
    with httpx.Client(base_url=server.url, timeout=30) as http:
        key = {"X-Api-Key": API_KEY}
        token = http.post("/v1/streaming.create_token", headers=key, json={}).json()
        assert token["error"] is None
        bearer = {"Authorization": f"Bearer {token['data']['token']}"}
        new = http.post("/v1/streaming.new", headers=bearer, json={"avatar_name": "mira", "quality": "LOW"}).json()
        assert new["code"] == 100 and new["message"] == "success"
        session_id = new["data"]["session_id"]
        reply = http.post("/v1/streaming.task", headers=bearer,
                          json={"session_id": session_id, "text": "hello", "task_type": "chat"}).json()
        assert reply["code"] == 100 and reply["data"]["task_id"]
        again = http.post("/v1/streaming.new", headers=bearer, json={})  # a token makes one session
        assert again.status_code == 401 and again.json()["code"] == 400112
        assert http.post("/v1/streaming.stop", headers=key, json={"session_id": session_id}).json()["code"] == 100
    assert server.open_sessions() == 0


@pytest.mark.parametrize(("fault", "error"), [
    ("500", errors.ServerError), ("401", errors.BadKeyError), ("429", errors.ConcurrentLimitError),
])
def test_faults_become_typed_errors_with_one_line(server, fault, error):
    async def body():
        c = client(server, extra_headers={"X-Fault": fault})
        try:
            with pytest.raises(error) as raised:
                await c.new_session("low", "ava", "heart")
            message = str(raised.value)
            assert "\n" not in message and len(message) < 200
        finally:
            await c.aclose()

    run(body())
    assert server.open_sessions() == 0


def test_wrong_key_slow_server_unknown_avatar_and_long_text(server):
    async def body():
        bad, slow, c = client(server, api_key="wrong"), client(server, timeout_s=0.5,
                                                               extra_headers={"X-Fault": "slow"}), client(server)
        try:
            with pytest.raises(errors.BadKeyError):
                await bad.list_sessions()
            with pytest.raises(errors.RequestTimeoutError):
                await slow.list_sessions()
            with pytest.raises(errors.AvatarNotFoundError):
                await c.new_session("low", "nobody", "heart")
            new = await c.new_session("low", "ava", "heart")
            with pytest.raises(errors.BadRequestError, match="text too long"):
                await c.task(new.session_id, "x" * 1001)
            await c.stop(new.session_id)
        finally:
            for each in (bad, slow, c):
                await each.aclose()

    run(body())
    assert server.open_sessions() == 0


def test_concurrency_limit_and_close_my_sessions(server):
    async def body():
        c = client(server)
        try:
            for _ in range(3):
                await c.new_session("low", "ava", "heart")
            with pytest.raises(errors.ConcurrentLimitError):
                await c.new_session("low", "ava", "heart")
            assert await c.close_sessions() == 3
            assert server.open_sessions() == 0
        finally:
            await c.aclose()

    run(body())


def test_idle_sessions_close_unless_kept_alive():
    server = LocalHeyGenProcess()
    try:
        async def body():
            c = client(server)
            try:
                kept = await c.new_session("low", "ava", "heart", activity_idle_timeout_s=2)
                idle = await c.new_session("low", "ava", "heart", activity_idle_timeout_s=2)
                for _ in range(8):
                    await asyncio.sleep(0.5)
                    await c.keep_alive(kept.session_id)
                assert [s["session_id"] for s in await c.list_sessions()] == [kept.session_id]
                with pytest.raises(errors.SessionClosedError):
                    await c.keep_alive(idle.session_id)
                await c.stop(kept.session_id)
            finally:
                await c.aclose()

        run(body())
    finally:
        server.stop()


def test_duration_limit_ends_a_session_even_when_kept_alive():
    server = LocalHeyGenProcess("--duration-limit", "2")
    try:
        async def body():
            c = client(server)
            try:
                new = await c.new_session("low", "ava", "heart")
                with pytest.raises(errors.SessionClosedError):
                    for _ in range(10):
                        await asyncio.sleep(0.5)
                        await c.keep_alive(new.session_id)
            finally:
                await c.aclose()

        run(body())
        assert server.open_sessions() == 0
    finally:
        server.stop()


async def connect(c: HeyGenClient, **new_kwargs):
    """What the v1 client does: take the offer, answer through streaming.start."""
    new = await c.new_session("low", "ava", "heart", **new_kwargs)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # loopback only: no public STUN
    frames: dict[str, list] = {"video": [], "audio": [], "events": [], "readers": []}

    @pc.on("track")
    def on_track(track):
        async def read():
            try:
                while True:
                    frame = await track.recv()
                    if track.kind == "video":
                        frames["video"].append((time.monotonic(), frame.to_ndarray(format="bgr24")))
                    else:
                        pcm = frame.to_ndarray().astype(np.float32) / 32768
                        frames["audio"].append((time.monotonic(), float(np.sqrt(np.mean(pcm**2)))))
            except MediaStreamError:
                pass

        frames["readers"].append(asyncio.ensure_future(read()))

    @pc.on("datachannel")
    def on_channel(channel):
        channel.on("message", lambda m: frames["events"].append(json.loads(m)))

    await pc.setRemoteDescription(RTCSessionDescription(**new.sdp))
    await pc.setLocalDescription(await pc.createAnswer())
    await c.start(new.session_id, pc.localDescription.sdp)
    return new, pc, frames


def test_media_events_and_interrupt(server):
    async def body():
        c = client(server)
        try:
            new, pc, got = await connect(c)
            assert await wait_until(lambda: len(got["video"]) > 10, 15), "no video from the stand-in"
            frame = got["video"][-1][1]
            assert frame.shape == (360, 640, 3)
            assert np.mean(frame[..., 1].astype(int) - np.maximum(frame[..., 0], frame[..., 2]) > 60) > 0.5
            t = time.monotonic()
            task = await c.task(new.session_id, "Hello from the local stand-in. This goes on for a while, "
                                                "so that there is time to interrupt it before the end.")
            assert await wait_until(lambda: max([rms for ts, rms in got["audio"] if ts > t], default=0) > 0.05, 10)
            await c.interrupt(new.session_id)
            assert await wait_until(lambda: any(e["type"] == "avatar_stop_talking" for e in got["events"]), 5)
            assert any(e["type"] == "avatar_start_talking" for e in got["events"])
            stop = next(e for e in got["events"] if e["type"] == "avatar_stop_talking")
            assert stop["task_id"] == task.task_id and stop["duration_ms"] < 4000  # cut short
            said = "".join(e["message"] for e in got["events"] if e["type"] == "avatar_talking_message")
            assert said.startswith("Hello from the local stand-in. This goes on")  # streamed in pieces
            t_stop = time.monotonic()  # the stop event has been seen: quiet from 0.1 s on, for 20 packets (0.4 s)

            def after() -> list[float]:
                return [rms for ts, rms in got["audio"] if ts > t_stop + 0.1]

            assert await wait_until(lambda: len(after()) >= 20 or max(after(), default=0) >= 0.01, 5)
            assert len(after()) >= 20 and max(after()) < 0.01, max(after(), default=0)
            await c.stop(new.session_id)
            await pc.close()
        finally:
            await c.aclose()

    run(body())
    assert server.open_sessions() == 0


def test_media_dropped_and_ice_that_never_connects(server):
    async def body():
        drop = client(server, extra_headers={"X-Fault": "drop-media"})
        no_ice = client(server, extra_headers={"X-Fault": "no-ice"})
        drop_s = server.drop_media_after_s  # --drop-media-after: time to see media flow on a loaded machine
        try:
            t_connect = time.monotonic()
            new, pc, got = await connect(drop)
            assert await wait_until(lambda: len(got["video"]) > 5, 15), "media flowed before it was dropped"
            set_up_s = got["video"][0][0] - t_connect

            def since_last_media() -> float:
                return time.monotonic() - max(got["video"][-1][0], got["audio"][-1][0] if got["audio"] else 0)

            assert await wait_until(lambda: since_last_media() > 1.0, drop_s + 10)  # then both stopped
            flowed = got["video"][-1][0] - got["video"][0][0]
            assert drop_s - 1.5 < flowed < drop_s + 1.0, f"video for {flowed:.1f} s, dropped after {drop_s} s"
            assert server.open_sessions() == 1  # the media went, the session did not
            await drop.stop(new.session_id)
            await pc.close()
            new, pc, got = await connect(no_ice)
            # nothing to wait for: give it three times what a working connection took to its first frame
            window = max(3.0, 3 * set_up_s)
            assert not await wait_until(lambda: pc.connectionState == "connected" or got["video"], window)
            await no_ice.stop(new.session_id)
            await pc.close()
        finally:
            await drop.aclose()
            await no_ice.aclose()

    run(body())
    assert server.open_sessions() == 0


def test_choices_for_the_dropdowns(server):

    async def body():
        good = HeyGenService(client(server), 15, 30, None, 15)
        bad = started_controller(service=HeyGenService(client(server, api_key="wrong"), 15, 30, None, 15))
        try:
            choices = await good.choices()
            assert ("ava", "ava") in [(i, i) for _, i in choices.avatars]
            assert "heart" in [i for _, i in choices.voices]
            assert await bad.choices("b") == Choices()  # the page still works: IDs can be typed
            assert bad.status("b")[1].endswith("Could not list HeyGen's avatars and voices: HeyGen refused "
                                               "the API key. Check HEYGEN_API_KEY on the server. You can still "
                                               "type IDs.")
        finally:
            await good.aclose()
            await bad.sessions.close_all("test over")
            await bad.service.aclose()

    run(body())
