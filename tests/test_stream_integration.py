"""Loopback integration: the real app in its own process, and a headless aiortc
viewer doing what the page's two WebRTC components do."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time

import numpy as np
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from tests.support.app_process import ROOT, AppProcess
from tests.support.webrtc_viewer import Viewer

pytestmark = pytest.mark.integration  # starts the app, a stand-in or a browser

METRICS = ROOT / "tests" / ".artifacts" / "stream-metrics.json"


@pytest.fixture(scope="module")
def app():
    app = AppProcess({"MAX_SESSIONS": "3"}).wait_ready()
    yield app
    app.stop()


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def greenness(frame: np.ndarray) -> np.ndarray:
    return frame[..., 1].astype(int) - np.maximum(frame[..., 0], frame[..., 2])


async def corner_becomes(viewer: Viewer, bgr: tuple[int, int, int], timeout: float = 20) -> bool:
    """The first keyed frame may wait for numba to compile the key (no cache on a fresh clone)."""
    def matches() -> bool:
        frame = viewer.video.last_frame
        return frame is not None and np.abs(frame[5, 5].astype(int) - bgr).max() < 25

    return await wait_until(matches, timeout)


async def wait_until(predicate, timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(step)
    return predicate()


def test_offline_avatar_streams_speaks_and_keys(app):
    async def body():
        async with Viewer(app.url) as viewer:
            log = await viewer.acall("new_session", "ava", "heart", "low")
            assert "created" in log
            await viewer.start()
            t_live = time.monotonic()
            cpu0 = cpu_seconds(app.proc.pid)
            await asyncio.sleep(4)
            cpu_share = (cpu_seconds(app.proc.pid) - cpu0) / (time.monotonic() - t_live)
            since = t_live + 1  # skip the first second of connection set-up
            fps, gaps = viewer.video.fps(since), viewer.video.gaps_ms(since)
            assert viewer.video.size == (640, 360)
            assert 20 <= fps <= 30, fps
            assert viewer.audio.fps(since) > 40  # 20 ms Opus packets
            idle_mouth = viewer.video.max_value(since)
            idle_loudness = viewer.audio.max_value(since)
            assert idle_mouth < 0.03 and idle_loudness < 0.01

            t_repeat = time.monotonic()
            await viewer.acall("repeat", "Hello there! I am the offline avatar, and I can talk.")
            await asyncio.sleep(3)
            first_audio = viewer.audio.first_time(lambda rms: rms > 0.02, t_repeat)
            first_mouth = viewer.video.first_time(lambda dark: dark > 0.05, t_repeat)
            assert first_audio is not None and first_mouth is not None
            assert viewer.video.max_value(t_repeat) > 3 * max(idle_mouth, 0.01)
            assert viewer.audio.max_value(t_repeat) > 0.05

            await viewer.acall("set_background", True, "color", "#3050d0", "studio", None)
            assert await corner_becomes(viewer, (208, 80, 48))  # BGR of #3050d0
            assert np.mean(greenness(viewer.video.last_frame) > 40) < 0.001
            picture = METRICS.parent / "orange.png"
            Image.new("RGB", (800, 600), (255, 140, 0)).save(picture)
            await viewer.acall("set_background", True, "upload", "#3050d0", "studio", handle_file(str(picture)))
            assert await corner_becomes(viewer, (0, 140, 255))
            await viewer.acall("set_background", False, "color", "#3050d0", "studio", None)
            t_plain = time.monotonic()
            assert await wait_until(lambda: viewer.video.times[-1] > t_plain + 0.3, 5)
            assert np.mean(greenness(viewer.video.last_frame) > 40) > 0.3  # the green screen is back

            log = await viewer.acall("close_session")
            assert "closed (closed by you)" in log
            t_closed = time.monotonic()
            await asyncio.sleep(1.5)
            assert not [t for t in viewer.video.times if t > t_closed + 0.5]
            assert all(pc.connectionState in ("closed", "failed") for pc in viewer.pcs)
            METRICS.write_text(json.dumps({
                "fps": fps, "gap_p50_ms": float(np.percentile(gaps, 50)),
                "gap_p95_ms": float(np.percentile(gaps, 95)),
                "repeat_to_first_audio_ms": 1000 * (first_audio - t_repeat),
                "repeat_to_first_mouth_ms": 1000 * (first_mouth - t_repeat),
                "app_cpu_share_of_one_core": cpu_share,
            }, indent=1))

    asyncio.run(body())


def test_out_of_order_api_calls_get_the_message(app):
    viewer = Viewer(app.url)
    try:
        for api_name, args, message in [("repeat", ("hi",), "Click New first"), ("start_stream", (), "Click New first"),
                                        ("close_session", (), "Click New first"),
                                        ("new_session", ("ava", "fenrir", "low"), "Valid voice IDs")]:
            with pytest.raises(AppError, match=message):
                viewer.call(api_name, *args)
    finally:
        asyncio.run(viewer.close())


def test_two_viewers_are_isolated(app):
    async def body():
        a, b = Viewer(app.url), Viewer(app.url)
        try:
            await a.acall("new_session", "leo", "espeak-us-male", "low")
            await b.acall("new_session", "ava", "heart", "low")
            await asyncio.gather(a.start(), b.start())
            await asyncio.sleep(1)
            t = time.monotonic()
            await a.acall("repeat", "Only I am speaking now, the other avatar stays quiet.")
            await asyncio.sleep(2.5)
            assert a.audio.max_value(t) > 0.05 and b.audio.max_value(t) < 0.01
            assert b.video.max_value(t) < 0.03
        finally:
            for v in (a, b):
                await v.close()

    asyncio.run(body())


def test_busy_then_shutdown_closes_live_sessions():
    """MAX_SESSIONS=1 refuses a second session; SIGTERM closes the live one."""
    app = AppProcess({"MAX_SESSIONS": "1"}).wait_ready()
    try:
        async def body():
            first, second = Viewer(app.url), Viewer(app.url)
            try:
                await first.acall("new_session", "mira", "heart", "low")
                with pytest.raises(AppError, match="busy: all 1 avatar sessions"):
                    await second.acall("new_session", "ava", "heart", "low")
                await first.start()
                assert await wait_until(lambda: len(first.video.times) > 10, 10)
                app.proc.send_signal(signal.SIGTERM)
                assert await asyncio.to_thread(app.proc.wait, 30) == 0
            finally:
                await first.close()
                await second.close()

        asyncio.run(body())
        assert "closed: the server is shutting down (0 live)" in app.output()
    finally:
        app.stop()


def test_an_idle_session_is_closed_and_its_streams_end():
    app = AppProcess({"MAX_SESSIONS": "1", "SESSION_IDLE_TIMEOUT_S": "3"}).wait_ready()
    try:
        async def body():
            async with Viewer(app.url) as viewer:
                await viewer.acall("new_session", "mira", "heart", "low")
                await viewer.start()
                assert await wait_until(lambda: len(viewer.video.times) > 10, 10)
                assert await wait_until(lambda: "no activity for 3 s" in app.output(), 15)
                assert await wait_until(lambda: all(pc.connectionState in ("closed", "failed")
                                                    for pc in viewer.pcs), 10)
                await viewer.acall("new_session", "ava", "heart", "low")  # the slot is free again

        asyncio.run(body())
    finally:
        app.stop()


def test_talk_and_interrupt_through_the_app():
    from tests.support.openai_process import OpenAIServerProcess

    llm = OpenAIServerProcess()
    app = AppProcess({"OPENAI_BASE_URL": llm.base_url, "OPENAI_API_KEY": "test-key"}).wait_ready()
    try:
        async def body():
            async with Viewer(app.url) as viewer:
                await viewer.acall("new_session", "ava", "heart", "low")
                await viewer.start()
                llm.script(chunks=["I am the offline avatar. ", "Nice to meet you!"])
                t = time.monotonic()
                assert "The LLM answered" in await viewer.acall("talk", "Who are you?", "llm")
                assert await wait_until(lambda: viewer.audio.max_value(t) > 0.05, 10)  # it is spoken
                llm.script(chunks=["Once upon a time. ", "There", " was a very long story."], hold_after=2)
                talking = asyncio.ensure_future(viewer.acall("talk", "Tell me a story.", "llm"))
                assert await wait_until(lambda: llm.state()["streaming"] == 1, 10)
                assert "Interrupted" in await viewer.acall("interrupt")
                assert "The answer was interrupted" in await talking
                assert await wait_until(lambda: llm.state()["hung_up"] == 1, 10)

        asyncio.run(body())
    finally:
        app.stop()
        llm.stop()
