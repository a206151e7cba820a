"""The app with AVATAR_PROVIDER=heygen against the HeyGen-compatible local server,
end to end on loopback: a headless WebRTC viewer receives the re-streamed,
background-removed avatar; every fault gives its message; nothing leaks upstream."""

from __future__ import annotations

import asyncio
import signal
import time

import numpy as np
import pytest
from gradio_client.exceptions import AppError

from avatar_core.providers.heygen.avatar import MEDIA_STALL_S
from avatar_core.providers.heygen.client import HeyGenClient
from tests.support.app_process import AppProcess
from tests.support.heygen_local_process import API_KEY, LocalHeyGenProcess
from tests.support.log_lines import session_closed
from tests.support.mouth_measure import OPEN_MOUTH
from tests.support.webrtc_viewer import Viewer
from tests.test_stream_integration import corner_becomes, greenness, wait_until

pytestmark = pytest.mark.integration


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True  # starts the app, a stand-in or a browser


OPERATOR_TOKEN = "operator-token-for-tests"
HEYGEN_APP = {"AVATAR_PROVIDER": "heygen", "HEYGEN_API_KEY": API_KEY, "HEYGEN_TIMEOUT_S": "5",
              "HEYGEN_CONNECT_TIMEOUT_S": "3", "MAX_SESSIONS": "3", "OPERATOR_TOKEN": OPERATOR_TOKEN}


@pytest.fixture(scope="module")
def heygen():
    server = LocalHeyGenProcess("--max-sessions", "3")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def app(heygen):
    app = AppProcess({**HEYGEN_APP, "HEYGEN_BASE_URL": heygen.url}).wait_ready()
    yield app
    app.stop()
    assert API_KEY not in app.output() and OPERATOR_TOKEN not in app.output()  # no secret in a log line


@pytest.fixture(autouse=True)
def no_fault(heygen):
    """Each test starts clean: no fault, nothing open upstream (a failed test cannot cascade;
    tests that check for leaks assert zero open sessions themselves, before this runs)."""
    heygen.set_fault(None)
    yield
    heygen.set_fault(None)

    async def close_leftovers() -> None:
        cleaner = HeyGenClient(API_KEY, heygen.url, 15.0)
        try:
            await cleaner.close_sessions()
        finally:
            await cleaner.aclose()

    asyncio.run(close_leftovers())


def test_new_start_repeat_close_relays_the_keyed_avatar(app, heygen):
    async def body():
        async with Viewer(app.url) as viewer:
            log = await viewer.acall("new_session", "leo", "heart", "low")
            assert "HeyGen avatar leo" in log and heygen.open_sessions() == 1
            await viewer.acall("set_background", True, "color", "#3050d0", "studio", None)
            await viewer.start()
            assert await wait_until(lambda: len(viewer.video.times) > 25, 10)
            assert await corner_becomes(viewer, (208, 80, 48))
            assert viewer.video.size == (640, 360)
            assert np.mean(greenness(viewer.video.last_frame) > 40) < 0.001  # HeyGen's green removed here
            mark = await viewer.log_mark()
            t = time.monotonic()
            await viewer.acall("repeat", "Hello, I am relayed from the HeyGen stand-in.")
            assert await wait_until(lambda: viewer.audio.max_value(t) > 0.05, 8)
            assert await wait_until(lambda: viewer.video.max_value(t) > OPEN_MOUTH, 8)  # the mouth moved
            # what was said is logged whole once HeyGen ends the message
            log = await viewer.wait_for_log("HeyGen says", "Avatar finished speaking.", after=mark)
            new_lines = "\n".join(log.splitlines()[mark:])
            assert "HeyGen says: Hello, I am relayed from the HeyGen stand-in." in new_lines
            assert "Avatar started speaking." in new_lines and "Avatar finished speaking." in new_lines  # HeyGen's
            assert session_closed("closed by you").search(await viewer.acall("close_session"))

    asyncio.run(body())
    assert heygen.open_sessions() == 0


def test_repeated_new_close_cycles_leave_nothing_open(app, heygen):
    viewer = Viewer(app.url)
    try:
        for _ in range(20):
            viewer.call("new_session", "ava", "heart", "low")
            viewer.call("close_session")
    finally:
        asyncio.run(viewer.close())
    assert heygen.open_sessions() == 0


@pytest.mark.parametrize(("fault", "message"), [
    ("500", "HeyGen's server had a problem"),
    ("401", "HeyGen refused the API key"),
    ("429", "limit of concurrent sessions is reached"),
])
def test_api_faults_give_their_message_and_the_app_keeps_serving(app, heygen, fault, message):
    viewer = Viewer(app.url)
    try:
        heygen.set_fault(fault)
        with pytest.raises(AppError, match=message):
            viewer.call("new_session", "ava", "heart", "low")
        heygen.set_fault(None)
        viewer.call("new_session", "ava", "heart", "low")  # still serving, same browser
        viewer.call("close_session")
    finally:
        asyncio.run(viewer.close())
    assert heygen.open_sessions() == 0


def test_unknown_avatar_and_heygens_own_concurrency_limit(app, heygen):
    """Sessions leaked upstream (another tool, a crash) fill HeyGen's limit; the page
    says so. "Close my open HeyGen sessions" stops only what this server opened; with the
    operator token it frees the others too, never the live ones here."""

    async def leak(n: int) -> None:
        outsider = HeyGenClient(API_KEY, heygen.url, 15.0)
        try:
            for _ in range(n):
                await outsider.new_session("low", "ava", "heart")
        finally:
            await outsider.aclose()

    viewers = [Viewer(app.url), Viewer(app.url)]
    try:
        with pytest.raises(AppError, match="does not know that avatar"):
            viewers[0].call("new_session", "nobody", "heart", "low")
        viewers[0].call("new_session", "ava", "heart", "low")
        asyncio.run(leak(2))
        with pytest.raises(AppError, match="limit of concurrent sessions is reached"):
            viewers[1].call("new_session", "ava", "heart", "low")
        assert "Closed 0 leftover HeyGen session(s) that this server opened" in \
            viewers[1].call("close_leaked_heygen_sessions", "")
        assert heygen.open_sessions() == 3  # not ours: kept
        with pytest.raises(AppError, match="That operator token is not right"):
            viewers[1].call("close_leaked_heygen_sessions", OPERATOR_TOKEN[:-1])
        assert "Closed 2 leftover HeyGen session(s) under this key" in \
            viewers[1].call("close_leaked_heygen_sessions", OPERATOR_TOKEN)
        assert heygen.open_sessions() == 1  # the live one here was kept
        viewers[1].call("new_session", "ava", "heart", "low")
        for v in viewers:
            v.call("close_session")
    finally:
        for v in viewers:
            asyncio.run(v.close())
    assert heygen.open_sessions() == 0


def test_a_creation_whose_reply_never_came_is_found_and_stopped(app, heygen):
    """Issue 11, class 10: New timed out while HeyGen was slow, but HeyGen made the session;
    it stayed open until HeyGen's idle timeout. The ledger looks for it (streaming.list:
    made in that request's time, never started, nobody's here) and stops it, unasked."""
    viewer = Viewer(app.url)
    try:
        mark = len(app.output().splitlines())
        heygen.set_fault("slow", slow_s=7)  # longer than the app's HEYGEN_TIMEOUT_S=5
        with pytest.raises(AppError, match="did not answer in time"):
            viewer.call("new_session", "ava", "heart", "low")
        assert heygen.open_sessions() == 1  # the stand-in made the session we gave up on
        heygen.set_fault(None)  # the ledger's first listing went out slow too: it times out, 5 s later
        time.sleep(5)
        outsider = asyncio.run(new_upstream_session(heygen))  # another replica's New, after we gave up
        assert wait_for(lambda: heygen.open_sessions() == 1, 20)  # the next listing finds the orphan
        lines = app.output().splitlines()[mark:]
        assert any("was made for a request whose reply was lost: stopping it" in line for line in lines), lines
        assert asyncio.run(upstream_ids(heygen)) == [outsider]  # made outside that request's time: kept
    finally:
        asyncio.run(viewer.close())


async def new_upstream_session(heygen) -> str:
    client = HeyGenClient(API_KEY, heygen.url, 15.0)
    try:
        return (await client.new_session("low", "ava", "heart")).session_id
    finally:
        await client.aclose()


async def upstream_ids(heygen) -> list[str]:
    client = HeyGenClient(API_KEY, heygen.url, 15.0)
    try:
        return [str(s["session_id"]) for s in await client.list_sessions()]
    finally:
        await client.aclose()


def test_the_clean_up_button_of_a_second_server_leaves_the_first_ones_stream_alone(app, heygen):
    """Issue 11, class 11: two replicas of a Space share a key; any visitor of the second
    clicked "Close my open HeyGen sessions" and killed a live stream of the first."""
    second = AppProcess({**HEYGEN_APP, "HEYGEN_BASE_URL": heygen.url}).wait_ready()

    async def body() -> None:
        async with Viewer(app.url) as watcher, Viewer(second.url) as stranger:
            await watcher.acall("new_session", "ava", "heart", "low")
            await watcher.start()
            log = await stranger.acall("close_leaked_heygen_sessions", "")
            assert "Closed 0 leftover HeyGen session(s) that this server opened" in log
            since = time.monotonic()
            assert await wait_until(lambda: len([t for t in watcher.video.times if t > since]) > 25, 5)
            assert heygen.open_sessions() == 1
            await watcher.acall("close_session")

    try:
        asyncio.run(body())
    finally:
        second.stop()
    assert heygen.open_sessions() == 0


def test_media_dropped_mid_stream_closes_the_session_with_a_message(app, heygen):
    async def body():
        async with Viewer(app.url) as viewer:
            heygen.set_fault("drop-media")
            await viewer.acall("new_session", "ava", "heart", "low")
            t_start = time.monotonic()
            await viewer.start()  # connects upstream: HeyGen's media flows from here, for drop_media_after_s
            t_started = time.monotonic()
            assert await wait_until(lambda: len(viewer.video.times) > 5, 10)  # relayed while HeyGen's media flowed
            drop_s = heygen.drop_media_after_s
            assert await wait_until(lambda: heygen.open_sessions() == 0, drop_s + MEDIA_STALL_S + 10)
            closed_after = time.monotonic() - t_start
            # not before HeyGen dropped the media, and at the latest when the stall limit notices it (+ slack)
            assert drop_s <= closed_after < (t_started - t_start) + drop_s + MEDIA_STALL_S + 3, closed_after
            assert await wait_until(lambda: all(pc.connectionState in ("closed", "failed") for pc in viewer.pcs), 10)
            with pytest.raises(AppError, match="Click New first"):
                await viewer.acall("repeat", "anyone?")
            log = await viewer.acall("status")
            assert "stopped because of HeyGen's video stopped arriving" in log
            assert session_closed("media failure").search(log), log

    asyncio.run(body())


def test_ice_that_never_connects_fails_start_clearly(app, heygen):
    viewer = Viewer(app.url)
    try:
        heygen.set_fault("no-ice")
        viewer.call("new_session", "ava", "heart", "low")
        with pytest.raises(AppError, match="did not connect within 3 s"):
            viewer.call("start_stream")
        assert heygen.open_sessions() == 0
        heygen.set_fault(None)
        viewer.call("new_session", "ava", "heart", "low")  # the browser can begin again
        viewer.call("close_session")
    finally:
        asyncio.run(viewer.close())
    assert heygen.open_sessions() == 0


def test_keep_alive_holds_an_open_session_and_shutdown_stops_it():
    server = LocalHeyGenProcess("--idle-timeout", "2")
    app = AppProcess({"AVATAR_PROVIDER": "heygen", "HEYGEN_API_KEY": API_KEY, "HEYGEN_BASE_URL": server.url,
                      "HEYGEN_KEEP_ALIVE_S": "0.5"}).wait_ready()
    try:
        async def body():
            async with Viewer(app.url) as viewer:
                await viewer.acall("new_session", "ava", "heart", "low")
                await viewer.start()
                t = time.monotonic()
                # 2.5 times HeyGen's idle timeout, no user action: frames keep arriving all along
                assert await wait_until(lambda: bool(viewer.video.times) and viewer.video.times[-1] > t + 5, 15)
                assert server.open_sessions() == 1
                gaps = viewer.video.gaps_ms(t)
                assert len(gaps) > 50 and gaps.max() < 1000, (len(gaps), gaps.max())
                app.proc.send_signal(signal.SIGTERM)  # shutting down stops the upstream session too
                assert await asyncio.to_thread(app.proc.wait, 30) == 0

        asyncio.run(body())
        assert server.open_sessions() == 0
    finally:
        app.stop()
        server.stop()


def test_heygen_closing_the_session_closes_ours_with_a_message(app, heygen):
    async def body():
        viewer = Viewer(app.url)
        outsider = HeyGenClient(API_KEY, heygen.url, 15.0)
        try:
            await viewer.acall("new_session", "ava", "heart", "low")
            await viewer.start()
            assert await wait_until(lambda: len(viewer.video.times) > 5, 10)
            assert await outsider.close_sessions() == 1  # HeyGen ends it (idle limit, another tool...)
            assert "The stream stopped because of HeyGen's" in await viewer.wait_for_log("stopped because of HeyGen")
            with pytest.raises(AppError, match="Click New first"):
                await viewer.acall("repeat", "Hello?")
        finally:
            await outsider.aclose()
            await viewer.close()

    asyncio.run(body())
    assert heygen.open_sessions() == 0


def test_a_failed_repeat_gives_one_line_and_the_session_stays_usable(app, heygen):
    async def body():
        async with Viewer(app.url) as viewer:
            await viewer.acall("new_session", "ava", "heart", "low")
            await viewer.start()
            heygen.set_fault("500")
            with pytest.raises(AppError, match="HeyGen's server had a problem"):
                await viewer.acall("repeat", "This will not reach HeyGen.")
            heygen.set_fault(None)
            assert "Repeat sent" in await viewer.acall("repeat", "This one will.")
            await viewer.acall("close_session")

    asyncio.run(body())
    assert heygen.open_sessions() == 0


def test_heygens_own_llm_answers_talk(app, heygen):
    async def body():
        async with Viewer(app.url) as viewer:
            await viewer.acall("new_session", "ava", "heart", "low")
            await viewer.start()
            assert "Talk sent to HeyGen's LLM" in await viewer.acall("talk", "What are you?", "heygen")
            log = await viewer.wait_for_log("HeyGen says: This is the local stand-in")
            assert "HeyGen says: This is the local stand-in, not a language model. You said: What are you?" in log
            await viewer.acall("close_session")

    asyncio.run(body())


def test_interrupt_reaches_heygen(app, heygen):
    async def body():
        async with Viewer(app.url) as viewer:
            await viewer.acall("new_session", "ava", "heart", "low")
            await viewer.start()
            t = time.monotonic()
            await viewer.acall("repeat", "This is a long sentence that goes on and on, so that there is plenty "
                                         "of time to interrupt it well before it would end by itself.")
            assert await wait_until(lambda: viewer.audio.max_value(t) > 0.05, 10)
            assert "Interrupted" in await viewer.acall("interrupt")
            # HeyGen goes quiet (streaming.interrupt) long before the sentence would have ended (~8 s)
            assert await wait_until(lambda: all(v < 0.01 for v in viewer.audio.values[-25:]), 4)
            await viewer.acall("close_session")

    asyncio.run(body())


def test_a_stop_that_fails_is_retried_until_heygen_confirms(app, heygen):
    """Issue 11, class 10: Close while streaming.stop fails left the session open upstream,
    counting against HeyGen's limit. Now the stop is retried (1 s, 2 s, 4 s ...)."""
    viewer = Viewer(app.url)
    try:
        viewer.call("new_session", "ava", "heart", "low")
        assert heygen.open_sessions() == 1
        heygen.set_fault("500")  # every request fails, streaming.stop included
        log = viewer.call("close_session")
        assert session_closed("closed by you").search(log), log  # our side is closed at once
        time.sleep(2)  # two tries have failed by now: still open upstream
        assert heygen.open_sessions() == 1
        heygen.set_fault(None)
        deadline = time.monotonic() + 10  # the next try (4 s after the second) stops it
        while heygen.open_sessions() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert heygen.open_sessions() == 0
        assert app.wait_for_output("stopped on a later try", timeout=5)
    finally:
        asyncio.run(viewer.close())
