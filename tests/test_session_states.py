"""The session state machine through the controller, with the real offline avatar:
every out-of-order click gives a clear message and changes nothing."""

import asyncio

import pytest

from avatar_core.errors import UserError
from avatar_core.events import ViewerChanged
from avatar_core.providers.local.service import LocalService
from avatar_core.session.controller import Controller
from avatar_core.session.session import SessionState
from tests.support.controllers import started_controller

ME, OTHER = "browser-1", "browser-2"


def run(coro_fn, max_sessions=2, idle_timeout_s=300.0):
    async def main():
        controller = started_controller(max_sessions, idle_timeout_s)
        try:
            return await coro_fn(controller)
        finally:
            await controller.sessions.close_all("test over")

    return asyncio.run(main())


async def new(c: Controller, key=ME, avatar="ava", voice="heart", quality="low"):
    return await c.new_session(key, avatar, voice, quality)


async def attach_viewers(c: Controller, key=ME):
    """What the two streams report when a browser's connections attach."""
    session = c.sessions.get(c.browser(key).session_id)
    session.events.emit(ViewerChanged("video", attached=True))
    session.events.emit(ViewerChanged("audio", attached=True))
    await asyncio.sleep(0.01)  # delivered on the loop
    return session


def snapshot(c: Controller):
    return [(s.id, s.state) for s in c.sessions.owned_by(ME)], c.browser(ME).session_id


@pytest.mark.parametrize("action", ["start", "repeat", "close"])
def test_actions_before_new_are_refused(action):
    async def body(c):
        calls = {"start": lambda: c.start(ME), "repeat": lambda: c.repeat(ME, "hi"), "close": lambda: c.close(ME)}
        before = snapshot(c)
        with pytest.raises(UserError, match="Click New first"):
            result = calls[action]()
            if asyncio.iscoroutine(result):
                await result
        assert snapshot(c) == before and len(c.sessions) == 0
        assert "Click New first" in c.status(ME)[1]

    run(body)


def test_full_lifecycle_and_repeated_clicks():
    async def body(c):
        session_id = await new(c)
        session = c.sessions.get(session_id)
        assert session.state is SessionState.NEW
        with pytest.raises(UserError, match="already open"):
            await new(c)
        with pytest.raises(UserError, match="Click Start"):
            await c.repeat(ME, "too early")
        await c.start(ME)
        assert session.state is SessionState.CONNECTING
        with pytest.raises(UserError, match="already started"):
            await c.start(ME)
        await attach_viewers(c)
        assert session.state is SessionState.LIVE
        await asyncio.sleep(0)  # the streams report in through the loop
        await c.repeat(ME, "Hello there.")
        for _ in range(100):  # speech is synthesised off the loop and played by the clock
            if session.avatar.busy:
                break
            await asyncio.sleep(0.02)
        assert session.avatar.busy
        with pytest.raises(UserError, match="Type a message for the avatar first"):
            await c.repeat(ME, "   ")
        with pytest.raises(UserError, match="limit is 1000"):
            await c.repeat(ME, "x" * 1001)
        await c.close(ME)
        assert session.state is SessionState.CLOSED and len(c.sessions) == 0
        assert not session.clock.running
        with pytest.raises(UserError, match="no open session to close"):
            await c.close(ME)
        log = c.status(ME)[1]
        for line in ("created", "Starting the stream", "Stream connected", "Repeat sent", "closed (closed by you)"):
            assert line in log
        # and a new session works after a close
        assert await new(c) != session_id

    run(body)


@pytest.mark.parametrize(("field", "value", "valid"), [
    ("avatar", "nobody", "ava, leo, mira"),
    ("voice", "fenrir", "heart, espeak-us-male"),
    ("quality", "ultra", "low (640x360)"),
])
def test_unknown_ids_are_refused_with_the_valid_ones(field, value, valid):
    async def body(c):
        with pytest.raises(UserError, match=valid.replace("(", r"\(").replace(")", r"\)")):
            await new(c, **{field: value})
        assert len(c.sessions) == 0 and c.browser(ME).session_id is None

    run(body)


def test_max_sessions_gives_a_busy_message_and_frees_on_close():
    async def body(c):
        await new(c, ME)
        with pytest.raises(UserError, match="busy: all 1 avatar sessions"):
            await new(c, OTHER)
        assert len(c.sessions) == 1
        await c.close(ME)
        await new(c, OTHER)

    run(body, max_sessions=1)


def test_simultaneous_new_from_two_browsers_at_the_cap_makes_one_session():
    async def body(c):
        results = await asyncio.gather(new(c, ME), new(c, OTHER), return_exceptions=True)
        assert sum(isinstance(r, str) for r in results) == 1  # the slot being created counts
        assert [str(r) for r in results if isinstance(r, UserError)] == [
            "The server is busy: all 1 avatar sessions are in use. Try again in a few minutes."]
        assert len(c.sessions) == 1

    run(body, max_sessions=1)


def test_activity_keeps_an_idle_timeout_away():
    async def body(c):
        session = c.sessions.get(await new(c))
        await c.start(ME)
        await attach_viewers(c)
        for _ in range(8):  # 2 s of clicks, twice the timeout: each one resets the timer
            await c.set_background(ME, False, "color", "#000000", "studio", None)
            await asyncio.sleep(0.25)
            assert session.state is not SessionState.CLOSED
        for _ in range(100):  # then nothing: closed within the timeout plus a reaper period
            if session.state is SessionState.CLOSED:
                break
            await asyncio.sleep(0.05)
        assert session.state is SessionState.CLOSED and "no activity for 1 s" in c.status(ME)[1]

    run(body, idle_timeout_s=1.0)


def test_shutdown_waits_for_a_new_in_flight_and_stops_what_it_made():
    made: list = []

    class Slow(LocalService):
        async def create(self, *args):
            await asyncio.sleep(0.3)  # an upstream that takes a while to answer
            made.append(await super().create(*args))
            return made[-1]

    async def body():
        c = started_controller(service=Slow())
        new_in_flight = asyncio.ensure_future(new(c))
        await asyncio.sleep(0.05)
        await c.sessions.close_all("the server is shutting down")  # waits for the New, then stops it
        assert new_in_flight.done()
        with pytest.raises(UserError, match="The server is shutting down"):
            await new_in_flight
        assert len(made) == 1 and made[0]._closed and len(c.sessions) == 0
        with pytest.raises(UserError, match="The server is shutting down"):
            await new(c, OTHER)  # and no new ones after
        assert len(c.sessions) == 0

    asyncio.run(body())


def test_idle_sessions_are_closed_by_the_reaper():
    async def body(c):
        session = c.sessions.get(await new(c))
        await c.start(ME)
        for _ in range(100):  # the reaper checks every 0.5 s here; give it up to 5 s
            if len(c.sessions) == 0:
                break
            await asyncio.sleep(0.05)
        assert session.state is SessionState.CLOSED and len(c.sessions) == 0
        assert "no activity for 1 s" in c.status(ME)[1]

    run(body, idle_timeout_s=1.0)


def test_speech_queue_is_bounded():
    async def body(c):
        await new(c)
        await c.start(ME)
        await attach_viewers(c)
        long_text = "This is a sentence the avatar takes a while to say. " * 18
        with pytest.raises(UserError, match="already waiting to be spoken"):
            for _ in range(10):
                await c.repeat(ME, long_text)

    run(body)


def test_concurrent_new_clicks_make_one_session():
    async def body(c):
        results = await asyncio.gather(new(c), new(c), return_exceptions=True)
        assert sum(isinstance(r, str) for r in results) == 1
        assert any(isinstance(r, UserError) and "already being created" in str(r) for r in results)
        assert len(c.sessions) == 1

    run(body)


def test_a_tab_closed_during_new_leaves_no_session():
    async def body(c):
        c.browser(ME)
        creating = asyncio.ensure_future(new(c))
        await asyncio.sleep(0)  # New is now building the avatar off the loop
        await c.unload(ME)
        with pytest.raises(UserError, match="page was closed"):
            await creating
        assert len(c.sessions) == 0

    run(body)


def test_unload_closes_only_that_browsers_session():
    async def body(c):
        mine, theirs = await new(c, ME), await new(c, OTHER)
        await c.unload(ME)
        assert c.sessions.get(mine) is None
        assert c.sessions.get(theirs).state is SessionState.NEW

    run(body)


def test_close_is_idempotent_and_stops_the_clock():
    async def body(c):
        session = c.sessions.get(await new(c))
        await c.start(ME)
        await asyncio.gather(session.close("a"), session.close("b"), session.close("c"))
        assert not session.clock.running
        assert c.status(ME)[1].count("closed (") == 1

    run(body)
