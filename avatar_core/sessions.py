"""All live sessions: the MAX_SESSIONS cap, lookup for the streams, idle reaping and
shutdown. Sessions leave the registry only through `close`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from .memory import collect_garbage, trim_heap
from .provider import AvatarProvider, ProviderError
from .session import AvatarSession, UserError
from .status_log import StatusLog

log = logging.getLogger(__name__)

ProviderFactory = Callable[[str, str, str], Awaitable[AvatarProvider]]  # (avatar_id, voice_id, quality)
# Per live session, threads the default executor must have: fastrtc parks each audio
# stream in one, and aiortc encodes video and audio there; plus synthesis and set-up.
THREADS_PER_SESSION = 4
THREADS_SPARE = 8
RELEASE_AFTER_S = 5.0  # a closed session's connections linger ~2 s (streams.CLOSE_GRACE_TICKS)


class SessionManager:
    def __init__(self, provider_factory: ProviderFactory, max_sessions: int, idle_timeout_s: float,
                 video_delay_ticks: int = 0, connection_help: str = "") -> None:
        self._factory = provider_factory
        self.max_sessions = max_sessions
        self.idle_timeout_s = idle_timeout_s
        self._video_delay_ticks = video_delay_ticks
        self._connection_help = connection_help  # said when a stream does not connect
        self._sessions: dict[str, AvatarSession] = {}
        self._creating = 0  # reserved slots while a provider is being built
        self._reaper: asyncio.Task[None] | None = None
        self._release: asyncio.TimerHandle | None = None
        self._release_again = False
        self._release_task: asyncio.Future[None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, session_id: str | None) -> AvatarSession | None:
        return self._sessions.get(session_id) if session_id else None

    def all(self) -> list[AvatarSession]:
        return list(self._sessions.values())

    def owned_by(self, owner: str) -> list[AvatarSession]:
        return [s for s in self._sessions.values() if s.owner == owner]

    async def create(self, owner: str, log_: StatusLog, avatar_id: str, voice_id: str,
                     quality: str) -> AvatarSession:
        self._ensure_reaper()
        if len(self._sessions) + self._creating >= self.max_sessions:
            raise UserError(f"The server is busy: all {self.max_sessions} avatar sessions are in use. "
                            "Try again in a few minutes.")
        self._creating += 1
        try:
            provider = await self._factory(avatar_id, voice_id, quality)
        except (ValueError, ProviderError) as exc:
            raise UserError(str(exc)) from None
        finally:
            self._creating -= 1
        session = AvatarSession(uuid.uuid4().hex, owner, provider, log_, self._video_delay_ticks,
                                on_closed=self._forget, connection_help=self._connection_help)
        self._sessions[session.id] = session
        log.info("session %s opened (%d of %d live)", session.short_id, len(self._sessions), self.max_sessions)
        return session

    async def close(self, session: AvatarSession, reason: str) -> None:
        await session.close(reason)

    def _forget(self, session: AvatarSession, reason: str) -> None:
        """Every close, whatever its cause, ends here (the session's teardown calls it)."""
        if self._sessions.pop(session.id, None) is not None:
            log.info("session %s closed: %s (%d live)", session.short_id, reason, len(self._sessions))
        # once its two connections have ended too; one release at a time, and one more
        # for sessions that closed while it waited
        if self._release is None:
            self._release = asyncio.get_running_loop().call_later(RELEASE_AFTER_S, self._start_release)
        else:
            self._release_again = True

    def _start_release(self) -> None:
        self._release_task = asyncio.ensure_future(self._release_memory())

    async def _release_memory(self) -> None:
        pause = collect_garbage()
        await asyncio.to_thread(trim_heap)  # malloc_trim walks the heap: not on the loop
        log.debug("freed memory released (the collection paused the loop %.0f ms)", pause * 1000)
        self._release = None
        if self._release_again:
            self._release_again = False
            self._release = asyncio.get_running_loop().call_later(RELEASE_AFTER_S, self._start_release)

    async def close_owner(self, owner: str, reason: str) -> None:
        await asyncio.gather(*(self.close(s, reason) for s in self.owned_by(owner)), return_exceptions=True)

    async def close_idle(self) -> None:
        now = time.monotonic()
        idle = [s for s in self._sessions.values() if now - s.last_activity > self.idle_timeout_s]
        for s in idle:
            await self.close(s, f"no activity for {self.idle_timeout_s:.0f} s")

    async def close_all(self, reason: str) -> None:
        await asyncio.gather(*(self.close(s, reason) for s in list(self._sessions.values())),
                             return_exceptions=True)
        if self._reaper is not None:
            self._reaper.cancel()

    def _ensure_reaper(self) -> None:
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
            # the default executor (cores + 4 threads) would starve with a few sessions
            workers = THREADS_PER_SESSION * self.max_sessions + THREADS_SPARE
            self.loop.set_default_executor(ThreadPoolExecutor(workers, thread_name_prefix="avatar"))
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.create_task(self._reap_forever())

    async def _reap_forever(self) -> None:
        period = max(0.5, min(5.0, self.idle_timeout_s / 4))
        while True:
            await asyncio.sleep(period)
            with contextlib.suppress(Exception):
                await self.close_idle()
