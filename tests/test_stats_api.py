"""The app in its own process, as `python app.py` runs it: the `stats` API answers a
streaming viewer with its own session's numbers (and nothing of anyone else's), and the
console shows only what the operator needs (no Gradio debugging line for every WebRTC
offer, no deprecation warning)."""

from __future__ import annotations

import asyncio
import re

import pytest

from tests.support.app_process import AppProcess
from tests.support.heygen_local_process import API_KEY as HEYGEN_KEY
from tests.support.heygen_local_process import LocalHeyGenProcess
from tests.support.webrtc_viewer import Viewer

pytestmark = pytest.mark.integration  # starts the app

SECRET = "sk-stats-test-5e3c2a1b9d"  # an LLM key the server holds: it must show nowhere
SESSION_KEYS = {"streaming", "fps", "frame_gap_p95_ms", "frame_gap_max_ms", "ticks", "late_ticks",
                "avatar_audio_ms", "clock_audio_ms", "audio_queued_ms", "first_speech_ms", "upstream_fps",
                "upstream_hold_ms"}
WARNING = re.compile(r"\b\w*Warning: |deprecat", re.IGNORECASE)  # Python's warnings, Gradio's notices


@pytest.fixture(scope="module")
def app():
    app = AppProcess({"OPENAI_API_KEY": SECRET}).wait_ready()
    yield app
    app.stop()


async def stats_until(viewer: Viewer, ready, timeout: float = 20) -> dict:
    """The `stats` answer once `ready(answer)` holds (or as it is at the timeout)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        answer = await viewer.acall("stats")
        if ready(answer) or loop.time() > deadline:
            return answer
        await asyncio.sleep(0.2)


def test_stats_answers_a_streaming_viewer_with_its_own_numbers_only(app):
    async def body() -> None:
        async with Viewer(app.url, analyse_video=False) as viewer, Viewer(app.url, analyse_video=False) as other:
            assert (await viewer.acall("stats"))["session"] is None  # no session yet
            await viewer.acall("new_session", "ava", "heart", "low")
            before = await viewer.acall("stats")
            assert before["session"]["streaming"] is False and before["session"]["fps"] is None
            await viewer.start()
            live = await stats_until(viewer, lambda s: (s["session"]["fps"] or 0) > 0)
            session = live["session"]
            assert set(session) == SESSION_KEYS
            assert session["streaming"] and session["fps"] > 0 and session["ticks"] > 0
            assert session["frame_gap_p95_ms"] > 0 and session["frame_gap_max_ms"] >= session["frame_gap_p95_ms"]
            assert session["upstream_fps"] is None and session["upstream_hold_ms"] is None  # drawn here
            assert session["avatar_audio_ms"] is not None and session["clock_audio_ms"] >= 0  # the offline avatar's
            assert session["audio_queued_ms"] == pytest.approx(session["avatar_audio_ms"] + session["clock_audio_ms"],
                                                               abs=0.2)
            assert set(live["process"]) == {"cpu_share", "cores", "open_sessions"}
            assert live["process"]["open_sessions"] == 1 and live["process"]["cores"] >= 1

            later = await stats_until(viewer, lambda s: s["session"]["ticks"] > session["ticks"])
            assert later["session"]["ticks"] > session["ticks"]  # live numbers, not a snapshot
            assert later["process"]["cpu_share"] is not None and later["process"]["cpu_share"] > 0

            await viewer.acall("repeat", "Hello, the stats are timing this.")
            spoken = await stats_until(viewer, lambda s: s["session"]["first_speech_ms"] is not None)
            assert spoken["session"]["first_speech_ms"] > 0

            # another visitor sees the server's load, never this session
            theirs = await other.acall("stats")
            assert theirs["session"] is None and theirs["process"]["open_sessions"] == 1
            assert SECRET not in repr(theirs) and SECRET not in repr(spoken)

            await viewer.acall("close_session")
            assert (await viewer.acall("stats"))["session"] is None

    asyncio.run(body())


def test_stats_of_a_relayed_avatar_give_upstreams_frame_rate_and_the_hold():
    """AVATAR_PROVIDER=heygen against its stand-in: upstream's frames are counted as they
    arrive, and the hold is how far back the clock takes its frame (lip sync)."""
    heygen = LocalHeyGenProcess()
    app = AppProcess({"AVATAR_PROVIDER": "heygen", "HEYGEN_API_KEY": HEYGEN_KEY,
                      "HEYGEN_BASE_URL": heygen.url}).wait_ready()
    try:
        async def body() -> None:
            async with Viewer(app.url, analyse_video=False) as viewer:
                await viewer.acall("new_session", "leo", "heart", "low")
                await viewer.start()
                answer = await stats_until(viewer, lambda s: (s["session"]["upstream_fps"] or 0) > 0
                                           and s["session"]["upstream_hold_ms"] is not None)
                session = answer["session"]
                assert session["upstream_fps"] > 0 and session["upstream_hold_ms"] > 0, answer
                assert session["avatar_audio_ms"] is not None  # the relayed audio waiting in our buffer
                assert HEYGEN_KEY not in repr(answer)
                await viewer.acall("close_session")

        asyncio.run(body())
    finally:
        app.stop()
        heygen.stop()


def test_a_first_run_prints_only_what_the_operator_needs(app):
    """After the other test's offers (and anything else it did): no `content_type` line from
    Gradio's component route (workaround 12), no deprecation warning (the Chatbot's included)."""
    async def body() -> None:
        async with Viewer(app.url, analyse_video=False) as viewer:
            await viewer.acall("new_session", "ava", "heart", "low")
            await viewer.start()  # two offers through Gradio's component_server route
            await viewer.acall("close_session")

    asyncio.run(body())
    output = app.output()
    assert "Running on local URL" in output
    assert "content_type" not in output, output[-3000:]
    assert not [line for line in output.splitlines() if WARNING.search(line)], output[-3000:]
    assert SECRET not in output
