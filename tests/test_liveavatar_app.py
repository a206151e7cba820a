"""The app with AVATAR_PROVIDER=liveavatar against the LiveAvatar-compatible local server,
end to end on loopback, in FULL and in LITE mode: the server joins the stand-in's LiveKit
room with the unmodified `livekit` SDK (in a child process), and a headless WebRTC viewer
receives the re-streamed, background-removed avatar; faults give their one line; nothing
is left open upstream; no key or token reaches anything a browser can fetch."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time

import httpx
import numpy as np
import pytest
from gradio_client.exceptions import AppError

from avatar_core.providers.liveavatar.client import LiveAvatarClient
from tests.support.app_process import AppProcess
from tests.support.liveavatar_local_process import API_KEY, LocalLiveAvatarProcess
from tests.support.log_lines import session_closed
from tests.support.mouth_measure import OPEN_MOUTH
from tests.support.openai_process import OpenAIServerProcess
from tests.support.webrtc_viewer import Viewer, speech_onsets
from tests.test_heygen_app import wait_for
from tests.test_stream_integration import audio_quiet_for, corner_becomes, greenness, wait_until

pytestmark = pytest.mark.integration  # starts the app, the stand-in and an LLM stand-in

LLM_KEY = "llm-key-marker-for-liveavatar-tests"
OPERATOR_TOKEN = "operator-token-for-liveavatar-tests"


def app_env(standin: LocalLiveAvatarProcess, llm: OpenAIServerProcess, mode: str) -> dict[str, str]:
    return {"AVATAR_PROVIDER": "liveavatar", "LIVEAVATAR_API_KEY": API_KEY, "LIVEAVATAR_BASE_URL": standin.url,
            "LIVEAVATAR_MODE": mode, "LIVEAVATAR_TIMEOUT_S": "4", "LIVEAVATAR_CONNECT_TIMEOUT_S": "4",
            "MAX_SESSIONS": "3", "OPENAI_BASE_URL": llm.base_url, "OPENAI_API_KEY": LLM_KEY,
            "OPERATOR_TOKEN": OPERATOR_TOKEN}


@pytest.fixture(scope="module")
def standin():
    server = LocalLiveAvatarProcess("--max-sessions", "3")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def llm(llm_server):
    return llm_server  # conftest.py's, under this module's shorter name


@pytest.fixture(scope="module")
def full_app(standin, llm):
    app = AppProcess(app_env(standin, llm, "full")).wait_ready()
    yield app
    app.stop()
    assert_no_secret_in(app.output(), standin)


@pytest.fixture(scope="module")
def lite_app(standin, llm):
    app = AppProcess(app_env(standin, llm, "lite")).wait_ready()
    yield app
    app.stop()
    assert_no_secret_in(app.output(), standin)


def assert_no_secret_in(text: str, standin: LocalLiveAvatarProcess) -> None:
    issued = standin.issued_secrets()
    assert issued, "the stand-in handed out no token: nothing was checked"
    for secret in [API_KEY, LLM_KEY, OPERATOR_TOKEN, *issued]:
        assert secret not in text, "a key or token leaked"


@pytest.fixture(autouse=True)
def clean(standin):
    """Each test starts with no fault and nothing open upstream."""
    standin.set_fault(None)
    yield
    standin.set_fault(None)

    async def close_leftovers() -> None:
        cleaner = LiveAvatarClient(API_KEY, standin.url, 10.0)
        try:
            for s in await cleaner.list_sessions():
                await cleaner.stop(str(s["session_id"]))
        finally:
            await cleaner.aclose()

    asyncio.run(close_leftovers())


async def speaks_and_mouth_moves(viewer: Viewer, since: float) -> None:
    assert await wait_until(lambda: viewer.audio.max_value(since) > 0.05, 10), "no speech at the viewer"
    assert await wait_until(lambda: viewer.video.max_value(since) > OPEN_MOUTH, 10), "the mouth did not move"


@pytest.mark.parametrize("mode", ["full", "lite"])
def test_new_start_repeat_talk_interrupt_close_relays_the_keyed_avatar(mode, request, standin, llm):
    app = request.getfixturevalue(f"{mode}_app")

    async def body():
        async with Viewer(app.url) as viewer:
            log = await viewer.acall("new_session", "leo", "heart", "low")
            assert f"LiveAvatar {mode.upper()} avatar" in log and standin.open_sessions() == 1
            await viewer.acall("set_background", True, "color", "#3050d0", "studio", None)
            await viewer.start()
            assert await wait_until(lambda: len(viewer.video.times) > 25, 15)
            assert await corner_becomes(viewer, (208, 80, 48))  # the stand-in's green, replaced here
            assert viewer.video.size == (640, 360)
            assert np.mean(greenness(viewer.video.last_frame) > 40) < 0.001

            mark = await viewer.log_mark()
            t = time.monotonic()
            await viewer.acall("repeat", "Hello, I am relayed from the LiveAvatar stand-in.")
            await speaks_and_mouth_moves(viewer, t)
            first_audio, first_mouth = speech_onsets(viewer, t)
            assert first_audio is not None and first_mouth is not None
            # bench/stream.py measures ~370 ms and |mouth - audio| < 30 ms: generous bounds that
            # still fail for a stalled relay or lips without the hold (65-105 ms early)
            assert first_audio - t < 2.0, f"Repeat to first speech: {first_audio - t:.3f} s"
            assert abs(first_mouth - first_audio) < 0.15, f"mouth - audio: {first_mouth - first_audio:.3f} s"
            if mode == "full":  # LiveAvatar's agent says what it speaks
                await viewer.wait_for_log("LiveAvatar says: Hello, I am relayed from the LiveAvatar stand-in.",
                                          after=mark, timeout=15)
            await viewer.wait_for_log("Avatar started speaking.", "Avatar finished speaking.", after=mark, timeout=20)
            assert await wait_until(lambda: audio_quiet_for(viewer.audio, 0.5), 10)

            # Talk with our LLM: its sentences go to LiveAvatar as they complete
            llm.script(chunks=["I am relayed through LiveAvatar. ", "Nice to meet you!"])
            t = time.monotonic()
            assert "The LLM answered" in await viewer.acall("talk", "Who are you?", "llm")
            await speaks_and_mouth_moves(viewer, t)
            assert await wait_until(lambda: audio_quiet_for(viewer.audio, 0.5), 20)

            if mode == "full":  # LiveAvatar's own LLM answers, into the transcript
                mark = await viewer.log_mark()
                assert "LiveAvatar's LLM" in await viewer.acall("talk", "What are you?", "liveavatar")
                await viewer.wait_for_log("LiveAvatar says: This is the local stand-in", after=mark, timeout=15)
                assert await wait_until(lambda: audio_quiet_for(viewer.audio, 0.5), 20)

            # Interrupt: a long story falls silent at once
            llm.script(chunks=["Once upon a time, in a land far away, there lived a patient old storyteller "
                               "who told very long stories to anyone who would listen. ", "And", " then"],
                       hold_after=2)  # the rest is held: the request is open at Interrupt
            t = time.monotonic()
            talking = asyncio.ensure_future(viewer.acall("talk", "Tell me a story.", "llm"))
            assert await wait_until(lambda: viewer.audio.max_value(t) > 0.05, 15)
            assert "Interrupted" in await viewer.acall("interrupt")
            t_interrupted = time.monotonic()
            assert "interrupted" in (await talking).lower()
            left_s = t_interrupted + 2.0 - time.monotonic()
            assert await wait_until(lambda: audio_quiet_for(viewer.audio, 0.5), left_s), "still speaking"

            assert session_closed("closed by you").search(await viewer.acall("close_session"))
            assert_no_secret_in(await viewer.acall("status"), standin)

    asyncio.run(body())
    assert standin.open_sessions() == 0
    page = httpx.get(app.url, timeout=10).text + httpx.get(app.url + "/config", timeout=10).text
    assert_no_secret_in(page, standin)


def test_repeated_new_close_cycles_and_a_closed_tab_leave_nothing_open(full_app, standin):
    viewer = Viewer(full_app.url)
    try:
        for _ in range(20):
            viewer.call("new_session", "ava", "heart", "low")
            viewer.call("close_session")
    finally:
        asyncio.run(viewer.close())
    assert standin.open_sessions() == 0

    async def tab_closes() -> None:
        viewer = Viewer(full_app.url)
        await viewer.acall("new_session", "ava", "heart", "low")
        await viewer.start()
        assert await wait_until(lambda: len(viewer.video.times) > 10, 15)
        await viewer.close()  # the tab goes: its streams end, the session closes
    asyncio.run(tab_closes())
    assert wait_for(lambda: standin.open_sessions() == 0, 30)


@pytest.mark.parametrize(("fault", "message"), [
    ("500", "LiveAvatar's server had a problem"),
    ("401", "LiveAvatar refused the API key"),
    ("402", "out of credits"),
    ("429", "limit of concurrent sessions is reached"),
    ("slow", "did not answer in time"),
])
def test_api_faults_give_their_message_and_the_app_keeps_serving(full_app, standin, fault, message):
    viewer = Viewer(full_app.url)
    try:
        standin.set_fault(fault, slow_s=6)  # slow: longer than the app's LIVEAVATAR_TIMEOUT_S=4
        with pytest.raises(AppError, match=message):
            viewer.call("new_session", "ava", "heart", "low")
        standin.set_fault(None)
        viewer.call("new_session", "ava", "heart", "low")  # still serving, same browser
        viewer.call("close_session")
    finally:
        asyncio.run(viewer.close())
    # slow: the session the stand-in made after we gave up is found by the ledger and stopped
    assert wait_for(lambda: standin.open_sessions() == 0, 30)


def test_a_room_that_never_connects_is_reported_and_stopped(full_app, standin):
    async def body():
        async with Viewer(full_app.url) as viewer:
            await viewer.acall("new_session", "ava", "heart", "low")
            standin.set_fault("room-silent")
            with pytest.raises(AppError, match="Could not join LiveAvatar's LiveKit room within 4 s"):
                await viewer.acall("start_stream")
            standin.set_fault(None)
            assert standin.open_sessions() == 0
            await viewer.acall("new_session", "ava", "heart", "low")  # the app goes on
            await viewer.start()
            assert await wait_until(lambda: len(viewer.video.times) > 10, 15)
            await viewer.acall("close_session")

    asyncio.run(body())
    assert standin.open_sessions() == 0


@pytest.mark.parametrize(("mode", "what", "message"), [
    ("full", "room", "LiveAvatar's video stopped arriving|LiveAvatar's room closed"),
    ("lite", "socket", "LiveAvatar closed the session's voice socket"),
])
def test_a_room_or_socket_dropped_mid_stream_closes_the_session_with_its_reason(mode, what, message, request,
                                                                               standin):
    app = request.getfixturevalue(f"{mode}_app")

    async def body():
        async with Viewer(app.url) as viewer:
            await viewer.acall("new_session", "ava", "heart", "low")
            await viewer.start()
            assert await wait_until(lambda: len(viewer.video.times) > 10, 15)
            mark = await viewer.log_mark()
            assert standin.drop(what) == 1
            log = await viewer.wait_for_log(session_closed("media failure"), after=mark, timeout=20)
            assert any(re.search(message, line) for line in log.splitlines()[mark:]), log
            assert await wait_until(lambda: standin.open_sessions() == 0, 15)

    asyncio.run(body())


def test_a_room_process_that_crashes_ends_its_session_only(full_app, standin):
    """The SDK can abort its process: here the room's child is killed with SIGABRT. That
    session closes with its reason and is stopped upstream; another session streams on."""

    async def body():
        async with Viewer(full_app.url) as victim, Viewer(full_app.url) as other:
            rooms: list[list[int]] = []
            for viewer in (victim, other):
                await viewer.acall("new_session", "ava", "heart", "low")
                await viewer.start()
                assert await wait_until(lambda v=viewer: len(v.video.times) > 10, 15)
                rooms.append(room_processes(full_app.proc.pid))
            [victims_room], both = rooms
            assert len(both) == 2 and victims_room in both, rooms
            mark = await victim.log_mark()
            os.kill(victims_room, signal.SIGABRT)
            log = await victim.wait_for_log(session_closed("media failure"), after=mark, timeout=15)
            assert "crashed (signal 6)" in log
            assert await wait_until(lambda: standin.open_sessions() == 1, 15)
            t = time.monotonic()
            await other.acall("repeat", "I am still here.")
            await speaks_and_mouth_moves(other, t)
            await other.acall("close_session")

    asyncio.run(body())
    assert standin.open_sessions() == 0


def room_processes(app_pid: int) -> list[int]:
    """The app's room children (python -m avatar_core.providers.liveavatar.room_worker)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat, open(f"/proc/{entry}/cmdline", "rb") as cmd:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
                    if parent == app_pid and b"room_worker" in cmd.read():
                        found.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    return found


def test_close_my_open_sessions_keeps_the_live_one_and_other_processes_sessions(full_app, standin):
    """Without the operator token only this server's unused sessions go; with it, every
    session under the key but the live ones here."""

    async def leak() -> None:
        outsider = LiveAvatarClient(API_KEY, standin.url, 10.0)
        try:
            await outsider.create_token("FULL", "ava", "heart")
        finally:
            await outsider.aclose()

    async def body():
        async with Viewer(full_app.url) as viewer:
            await viewer.acall("new_session", "ava", "heart", "low")
            await viewer.start()
            await leak()
            assert standin.open_sessions() == 2
            assert "Closed 0 leftover LiveAvatar session(s) that this server opened" in \
                await viewer.acall("close_leaked_liveavatar_sessions", "")
            with pytest.raises(AppError, match="That operator token is not right"):
                await viewer.acall("close_leaked_liveavatar_sessions", OPERATOR_TOKEN[:-1])
            assert "Closed 1 leftover LiveAvatar session(s) under this key" in \
                await viewer.acall("close_leaked_liveavatar_sessions", OPERATOR_TOKEN)
            assert standin.open_sessions() == 1
            t = time.monotonic()
            assert await wait_until(lambda: sum(x >= t for x in viewer.video.times) > 10, 10)  # the live one streams on
            await viewer.acall("close_session")

    asyncio.run(body())
    assert standin.open_sessions() == 0


def test_keep_alive_holds_a_session_past_liveavatars_idle_timeout(llm):
    """The stand-in closes sessions idle for 3 s, as LiveAvatar does after 5 minutes: the
    app's keep-alive (every second here) holds a quiet, streaming session open."""
    standin = LocalLiveAvatarProcess("--idle-timeout", "3")
    app = AppProcess({**app_env(standin, llm, "lite"), "LIVEAVATAR_KEEP_ALIVE_S": "1"}).wait_ready()
    try:
        async def body():
            async with Viewer(app.url) as viewer:
                await viewer.acall("new_session", "ava", "heart", "low")
                await viewer.start()
                await asyncio.sleep(8)  # nothing said: only keep-alives reach LiveAvatar
                assert standin.open_sessions() == 1
                t = time.monotonic()
                assert await wait_until(lambda: sum(x >= t for x in viewer.video.times) > 10, 10)
                await viewer.acall("close_session")

        asyncio.run(body())
        assert standin.open_sessions() == 0
    finally:
        app.stop()
        standin.stop()


@pytest.mark.parametrize("how", ["shutdown", "killed"])
def test_the_app_ending_leaves_no_room_process_and_shutdown_stops_upstream(how, standin, llm):
    """Shutdown (SIGTERM) closes the live session: stopped upstream, its room process gone.
    An app killed outright cannot stop anything, but its room processes see their stdin
    end and leave the room: no orphan keeps a LiveAvatar room joined."""
    app = AppProcess(app_env(standin, llm, "full")).wait_ready()
    try:
        async def body() -> list[int]:
            viewer = Viewer(app.url)
            await viewer.acall("new_session", "ava", "heart", "low")
            await viewer.start()
            assert await wait_until(lambda: len(viewer.video.times) > 10, 15)
            rooms = room_processes(app.proc.pid)
            assert len(rooms) == 1
            if how == "shutdown":
                app.stop()
            else:
                app.proc.kill()
                app.proc.wait()
            await viewer.close()
            return rooms

        rooms = asyncio.run(body())
        assert wait_for(lambda: not any(os.path.exists(f"/proc/{pid}") and not zombie(pid) for pid in rooms), 15)
        if how == "shutdown":
            assert standin.open_sessions() == 0
            assert "Traceback" not in app.output()
    finally:
        app.stop()


def zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_close_while_the_room_is_still_joining_leaves_nothing(full_app, standin):
    """Close (or a closed tab) while Start waits for the room: the room process is ended,
    the upstream session stopped, and no room is joined after the session is gone."""

    async def body():
        async with Viewer(full_app.url) as viewer:
            await viewer.acall("new_session", "ava", "heart", "low")
            standin.set_fault("room-silent")  # the join hangs until LIVEAVATAR_CONNECT_TIMEOUT_S (4 s)
            starting = asyncio.ensure_future(viewer.acall("start_stream"))
            assert await wait_until(lambda: len(room_processes(full_app.proc.pid)) == 1, 10)
            await viewer.acall("close_session")
            t_closed = time.monotonic()
            # ended at once, not when the join gives up by itself 4 s later
            assert await wait_until(lambda: not room_processes(full_app.proc.pid), 10)
            assert time.monotonic() - t_closed < 2.0, time.monotonic() - t_closed
            with pytest.raises(AppError, match=r"closed while it was connecting|Could not start"):
                await starting
            standin.set_fault(None)
            assert standin.open_sessions() == 0
            await asyncio.sleep(5)  # past the join's own timeout: still nothing came back to life
            assert not room_processes(full_app.proc.pid) and standin.open_sessions() == 0

    asyncio.run(body())
