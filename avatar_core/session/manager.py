"""All live sessions: the MAX_SESSIONS cap, lookup for the streams, idle reaping and
shutdown. Sessions leave the registry only through their own close()."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter

from ..errors import UserError
from ..events import SessionEvents
from ..media.streams import StreamSource
from ..providers.base import AvatarService, Quality
from ..server.memory import collect_garbage, trim_heap
from ..server.runtime import Runtime
from ..talk.conversation import Conversation
from ..tasks import TaskOwner
from .admission import Admission
from .session import AvatarSession, SessionState
from .status_log import StatusLog

log = logging.getLogger(__name__)

RELEASE_AFTER_S = 5.0  # a closed session's connections linger ~2 s (streams.CLOSE_GRACE_TICKS)
MEASURE_EVERY_S = 1.0  # the running clocks' counters, for admission
SHUTTING_DOWN = "The server is shutting down; try again in a minute."


class SessionManager:
    def __init__(self, service: AvatarService, max_sessions: int, idle_timeout_s: float,
                 video_delay_ticks: int = 0, connection_help: str = "", max_per_client: int | None = None,
                 admission: Admission | None = None) -> None:
        """`admission`: below max_sessions, admit by the running streams' measured frame rate."""
        self.service = service
        self.max_sessions = max_sessions
        self.max_per_client = max_per_client or max_sessions
        self._creating: Counter[str] = Counter()  # client -> sessions being made for it: slots taken
        self.idle_timeout_s = idle_timeout_s
        self._video_delay_ticks = video_delay_ticks
        self._connection_help = connection_help  # said when a stream does not connect
        self._sessions: dict[str, AvatarSession] = {}
        self._none_creating = asyncio.Event()  # shutdown waits for it: a New in flight must not leak
        self._none_creating.set()
        self._closing = False  # shutting down: no new sessions
        self._tasks = TaskOwner("sessions")
        self._release: asyncio.Task[None] | None = None
        self._release_again = False
        self._runtime: Runtime | None = None
        self.admission = admission

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            raise RuntimeError("SessionManager.start() has not run: the server has not started")
        return self._runtime

    @property
    def started(self) -> bool:
        return self._runtime is not None

    def start(self, runtime: Runtime) -> None:
        """At start-up, on the event loop: the idle reaper begins."""
        self._runtime = runtime
        self._tasks.spawn(self._reap_forever(), "idle-reaper")
        if self.admission is not None:
            self._tasks.spawn(self._measure_forever(self.admission), "load-measure")

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, session_id: str | None) -> AvatarSession | None:
        return self._sessions.get(session_id) if session_id else None

    def all(self) -> list[AvatarSession]:
        return list(self._sessions.values())

    def stream_source(self, session_id: str | None) -> StreamSource | None:
        """An open session's clock and events, for its two WebRTC streams."""
        session = self.get(session_id)
        if session is None or session.state is SessionState.CLOSED:
            return None
        return StreamSource(session.clock, session.events)

    def owned_by(self, owner: str) -> list[AvatarSession]:
        return [s for s in self._sessions.values() if s.owner == owner]

    async def create(self, owner: str, log_: StatusLog, avatar_id: str, voice_id: str, quality: Quality,
                     conversation: Conversation, client: str = "") -> AvatarSession:
        """`client`: the address the request came from; one client holds at most max_per_client."""
        if self._closing:
            raise UserError(SHUTTING_DOWN)
        if len(self._sessions) + self._creating.total() >= self.max_sessions:
            raise UserError(f"The server is busy: all {self.max_sessions} avatar sessions are in use. "
                            "Try again in a few minutes.")
        self.check_admission()
        held = sum(1 for s in self._sessions.values() if s.client == client) + self._creating[client]
        if held >= self.max_per_client:
            raise UserError(f"You already have {held} avatar session(s) open from this address, the most one "
                            "visitor may have. Close one (or its tab) first.")
        events = SessionEvents(self.runtime)
        self._creating[client] += 1
        self._none_creating.clear()
        try:
            avatar = await self.service.create(avatar_id, voice_id, quality, events)
            if self._closing:  # shutdown began while it was being made: stop it (upstream too)
                await avatar.close()
                raise UserError(SHUTTING_DOWN)
        finally:
            self._creating[client] -= 1
            self._creating += Counter()  # drops the clients with none left
            if not self._creating:
                self._none_creating.set()
        session = AvatarSession(uuid.uuid4().hex, owner, avatar, events, log_, conversation,
                                self._video_delay_ticks, on_closed=self._forget,
                                connection_help=self._connection_help, client=client)
        self._sessions[session.id] = session
        log.info("session %s opened (%d of %d live)", session.short_id, len(self._sessions), self.max_sessions)
        return session

    def _forget(self, session: AvatarSession, reason: str) -> None:
        """Every close, whatever its cause, ends here (the session's teardown calls it)."""
        if self._sessions.pop(session.id, None) is not None:
            log.info("session %s closed: %s (%d live)", session.short_id, reason, len(self._sessions))
        # once its two connections have ended too; one release at a time, and one more
        # for sessions that closed while it waited
        if self._closing:
            return  # the process is ending
        if self._release is None or self._release.done():
            self._release = self._tasks.spawn(self._release_memory(), "release-memory")
        else:
            self._release_again = True

    async def _release_memory(self) -> None:
        while True:
            await asyncio.sleep(RELEASE_AFTER_S)
            pause = collect_garbage()
            await asyncio.to_thread(trim_heap)  # malloc_trim walks the heap: not on the loop
            log.debug("freed memory released (the collection paused the loop %.0f ms)", pause * 1000)
            if not self._release_again:
                return
            self._release_again = False

    async def close_owner(self, owner: str, reason: str) -> None:
        await asyncio.gather(*(s.close(reason) for s in self.owned_by(owner)), return_exceptions=True)

    async def close_idle(self) -> None:
        now = time.monotonic()
        idle = [s for s in self._sessions.values() if now - s.last_activity > self.idle_timeout_s]
        for s in idle:
            await s.close(f"no activity for {self.idle_timeout_s:.0f} s")

    async def close_all(self, reason: str) -> None:
        """Shutdown: no new sessions; those being made are waited for (and stopped); every
        session closes; then the reaper and the memory release end."""
        self._closing = True
        await self._none_creating.wait()
        await asyncio.gather(*(s.close(reason) for s in list(self._sessions.values())), return_exceptions=True)
        await self._tasks.cancel_all()

    def check_admission(self) -> None:
        """UserError when the running streams would be slowed by one more (New, and Start)."""
        if self.admission is not None and (refusal := self.admission.refusal()) is not None:
            raise UserError(refusal)

    def stream_started(self) -> None:
        if self.admission is not None:
            self.admission.stream_started()

    async def _measure_forever(self, admission: Admission) -> None:
        while True:
            await asyncio.sleep(MEASURE_EVERY_S)
            admission.sample({s.id: s.clock.stats for s in self._sessions.values() if s.clock.running})

    async def _reap_forever(self) -> None:
        period = max(0.5, min(5.0, self.idle_timeout_s / 4))
        while True:
            await asyncio.sleep(period)
            try:
                await self.close_idle()
            except Exception:  # one bad close must not end reaping for everyone
                log.exception("closing idle sessions failed")
