"""The one event path (from any thread, delivered on the loop, in order) and the
task owner (cancel and await; failures logged, not lost)."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

from avatar_core.events import SessionEvents, SpeakingChanged, UpstreamMessage
from avatar_core.server.runtime import Runtime
from avatar_core.tasks import TaskOwner


def test_events_from_another_thread_arrive_on_the_loop_in_order():
    async def body():
        events = SessionEvents(Runtime.on_running_loop(1))
        got: list[tuple[object, bool]] = []
        loop_thread = threading.current_thread()
        events.listen(lambda e: got.append((e, threading.current_thread() is loop_thread)))
        sender = threading.Thread(target=lambda: [events.emit(UpstreamMessage(str(i))) for i in range(200)])
        sender.start()
        sender.join()
        await asyncio.sleep(0.05)
        assert [e for e, _ in got] == [UpstreamMessage(str(i)) for i in range(200)]
        assert all(on_loop for _, on_loop in got)

    asyncio.run(body())


def test_events_before_the_listener_wait_for_it_and_none_after_close():
    async def body():
        events = SessionEvents(Runtime.on_running_loop(1))
        events.emit(SpeakingChanged(True, at=0.0))
        await asyncio.sleep(0.01)
        got: list[object] = []
        events.listen(got.append)
        assert got == [SpeakingChanged(True, at=0.0)]
        events.emit(SpeakingChanged(False, at=0.0))  # on its way to the loop when the session closes
        events.close()
        events.emit(SpeakingChanged(True, at=0.0))
        await asyncio.sleep(0.01)
        assert got == [SpeakingChanged(True, at=0.0)]

    asyncio.run(body())


def test_cancel_all_waits_until_every_task_has_cleaned_up():
    async def body():
        owner, cleaned = TaskOwner("test"), []

        async def work(i: int) -> None:
            try:
                await asyncio.sleep(60)
            finally:
                await asyncio.sleep(0.01)  # clean-up that itself awaits
                cleaned.append(i)

        for i in range(3):
            owner.spawn(work(i), f"work-{i}")
        await asyncio.sleep(0)
        await owner.cancel_all()
        assert sorted(cleaned) == [0, 1, 2] and len(owner) == 0
        await owner.cancel_all()  # idempotent

    asyncio.run(body())


def test_a_failed_task_is_logged_unless_its_caller_awaits_it(caplog):
    async def body():
        owner = TaskOwner("test")

        async def fail() -> None:
            raise ValueError("broken")

        owner.spawn(fail(), "background")
        awaited = owner.spawn(fail(), "awaited", awaited=True)
        with pytest.raises(ValueError):
            await awaited
        await asyncio.sleep(0.01)

    with caplog.at_level(logging.ERROR, logger="avatar_core.tasks"):
        asyncio.run(body())
    assert [r.getMessage() for r in caplog.records] == ["task test:background failed"]
