"""When media goes wrong: a provider that fails mid-stream, streams bound to a
session that is already closed."""

from __future__ import annotations

import asyncio

from fastrtc.utils import Context, current_context

from avatar_core.media import streams
from avatar_core.media.format import MediaTick
from avatar_core.providers.local.service import LocalService
from avatar_core.session.session import SessionState
from tests.support.controllers import started_controller
from tests.support.fake_avatars import BlankAvatar


class BreaksAfterTicks(BlankAvatar):
    """An avatar whose media source fails after a few ticks."""

    def __init__(self, ticks: int) -> None:
        super().__init__()
        self._ticks = ticks

    def tick(self, index: int) -> MediaTick:
        if index >= self._ticks:
            raise RuntimeError("decoder gone")
        return super().tick(index)


def test_a_failing_provider_closes_its_session_and_frees_the_slot():
    async def body():
        providers: list[BreaksAfterTicks] = []

        class Breaking(LocalService):
            async def create(self, *_):
                providers.append(BreaksAfterTicks(5))
                return providers[-1]

        c = started_controller(max_sessions=1, service=Breaking())
        session = c.sessions.get(await c.new_session("b", "any", "any", "low"))
        await c.start("b")
        for _ in range(100):  # the teardown ends by freeing the slot
            if len(c.sessions) == 0:
                break
            await asyncio.sleep(0.05)
        assert session.state is SessionState.CLOSED and providers[0].closed
        assert len(c.sessions) == 0
        log = c.status("b")[1]
        assert "internal error (RuntimeError)" in log and "closed (media failure)" in log
        await c.new_session("b", "any", "any", "low")  # the one slot is free again
        await c.sessions.close_all("done")

    asyncio.run(body())


def test_streams_bound_to_a_closed_session_close_their_connection():
    async def body():
        c = started_controller()
        session_id = await c.new_session("b", "ava", "heart", "low")
        await c.close("b")
        closed: list[str] = []
        current_context.set(Context(webrtc_id="peer-1"))
        video = streams.video_frames(c.sessions.stream_source, closed.append, session_id)
        frame = next(video)  # a frame, never a bare return (fastrtc would encode None)
        assert frame.shape == (360, 640, 3) and closed == ["peer-1"]
        audio = streams.audio_chunks(c.sessions.stream_source, closed.append, session_id)
        rate, chunk = next(audio)
        assert rate == 24_000 and not chunk.any() and closed == ["peer-1", "peer-1"]
        video.close()
        audio.close()

    asyncio.run(body())
