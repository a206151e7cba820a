"""Every upstream session this process asked for, until the upstream confirms it stopped.

For providers whose sessions live at a paid service (HeyGen, LiveAvatar): a session
left open there counts against the account's concurrency limit until its idle timeout.
- A stop that fails is retried in the background with backoff until the upstream confirms
  or says the session is gone.
- A creation whose reply never came (a timeout, a dropped connection) may still have made a
  session. It is found by listing the upstream's sessions: one created in that request's
  time window (sent .. gave up, give or take the clocks' skew) that was never started and
  that nobody here owns is adopted and stopped. Listing is tried at once and every few
  seconds for a while (it may turn up late), never while another creation is in flight.
  The one ambiguity left: another process's session made inside that same window and not
  started yet (its Start follows within seconds) could be taken for the lost one.
- Only sessions in this ledger are ever stopped: another process sharing the key (a
  second replica of a Space) keeps its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from ..errors import AvatarError, UpstreamError, UserError
from ..tasks import TaskOwner

log = logging.getLogger(__name__)
STOP_RETRY_FIRST_S = 1.0  # a stop that failed is tried again after this, then twice as long each time
STOP_RETRY_MAX_S = 60.0
SEARCH_EVERY_S = 5.0  # a lost creation is looked for this often
SEARCH_FOR_S = 45.0  # and for this long after its request failed
CLOCK_SKEW_S = 3.0  # the upstream's clock may be this far from ours


@dataclass(frozen=True)
class Listed:
    """An upstream session as the upstream lists it."""

    session_id: str
    created_at: float | None  # seconds since the epoch, by the upstream's clock
    started: bool  # a client connected to it (never true for one whose creation reply was lost)

    @classmethod
    def from_reply(cls, listed: dict[str, Any], not_started: frozenset[str]) -> Listed:
        """One entry of the upstream's session list, read loosely; a status outside
        `not_started` (an unknown one too) counts as started: maybe someone's live stream."""
        created = listed.get("created_at")
        return cls(str(listed.get("session_id") or listed.get("id")),
                   float(created) if isinstance(created, int | float) else None,
                   started=str(listed.get("status") or "").lower() not in not_started)


@dataclass(frozen=True)
class Unanswered:
    sent_at: float  # wall clock, when the creation request was sent
    failed_at: float  # and when we gave up on it

    def could_have_made(self, session: Listed) -> bool:
        created = session.created_at
        return created is not None and self.sent_at - CLOCK_SKEW_S <= created <= self.failed_at + CLOCK_SKEW_S


Stop = Callable[[str], Awaitable[None]]  # raises an AvatarError (session_is_gone: it is gone)
ListSessions = Callable[[], Awaitable[list[Listed]]]


class StillCreatingError(UserError):
    pass


class UpstreamLedger:
    def __init__(self, label: str, stop: Stop, list_sessions: ListSessions) -> None:
        self._label = label
        self._stop = stop
        self._list_sessions = list_sessions
        self.open: set[str] = set()  # asked for and not confirmed stopped (live, or being stopped)
        self.unstopped: set[str] = set()  # stops that failed: being retried
        self.unanswered: list[Unanswered] = []  # creations whose reply never came
        self.creating = 0
        self._none_creating = asyncio.Event()
        self._none_creating.set()
        self._tasks = TaskOwner(f"{label}-ledger")
        self._search: asyncio.Task[None] | None = None

    @asynccontextmanager
    async def creation(self) -> AsyncIterator[Callable[[str], None]]:
        """Around one creation request; call the yielded function with the new session's id.
        A failure after which the upstream may have made it anyway (an UpstreamError that
        `may_have_been_done`, a cancelled request) starts the search for it."""
        sent_at = time.time()
        self.creating += 1
        self._none_creating.clear()
        try:
            yield self.open.add
        except BaseException as exc:  # a cancelled request may have been sent too
            if isinstance(exc, asyncio.CancelledError) or (isinstance(exc, UpstreamError) and exc.may_have_been_done):
                self.unanswered.append(Unanswered(sent_at, time.time()))
                if self._search is None or self._search.done():
                    self._search = self._tasks.spawn(self._look_for_unanswered(), f"{self._label}-unanswered")
            raise
        finally:
            self.creating -= 1
            if not self.creating:
                self._none_creating.set()

    async def stop(self, session_id: str) -> None:
        """Stop one of ours; if the upstream does not confirm, keep trying in the background."""
        if await self._try_stop(session_id):
            self.open.discard(session_id)
            return
        log.warning("stopping %s session %s failed; trying again", self._label, session_id[:8])
        self.unstopped.add(session_id)
        self._tasks.spawn(self._retry_stop(session_id), f"{self._label}-stop-{session_id[:8]}")

    async def _retry_stop(self, session_id: str) -> None:
        delay = STOP_RETRY_FIRST_S
        while True:
            await asyncio.sleep(delay)
            if await self._try_stop(session_id):
                self._stopped(session_id)
                log.info("%s session %s stopped on a later try", self._label, session_id[:8])
                return
            delay = min(2 * delay, STOP_RETRY_MAX_S)

    async def _try_stop(self, session_id: str) -> bool:
        """True: stopped, or the upstream says it is gone already (what we wanted)."""
        try:
            await self._stop(session_id)
        except AvatarError as exc:
            if exc.session_is_gone:
                return True
            log.warning("stopping %s session %s failed (%s)", self._label, session_id[:8], type(exc).__name__)
            return False
        return True

    def _stopped(self, session_id: str) -> None:
        self.open.discard(session_id)
        self.unstopped.discard(session_id)

    async def _look_for_unanswered(self) -> None:
        """One search for every lost creation; each is given up SEARCH_FOR_S after it failed."""
        while self.unanswered:
            if not self.creating:  # a session made meanwhile is not ours until its reply says so
                try:
                    await self.reconcile()
                except Exception as exc:  # the upstream may still be failing: look again later
                    log.warning("listing %s sessions failed (%s)", self._label, type(exc).__name__)
            now = time.time()
            for attempt in [a for a in self.unanswered if now - a.failed_at > SEARCH_FOR_S]:
                log.info("no %s session turned up for a creation whose reply was lost", self._label)
                self.unanswered.remove(attempt)
            if self.unanswered:
                await asyncio.sleep(SEARCH_EVERY_S)

    async def reconcile(self) -> int:
        """List the upstream's sessions; adopt and stop one per lost creation reply. Returns
        how many were adopted."""
        if not self.unanswered:
            return 0
        listed = await self._list_sessions()
        candidates = sorted((s for s in listed if s.session_id not in self.open and not s.started
                             and s.created_at is not None), key=lambda s: s.created_at or 0.0)
        adopted: list[str] = []
        for attempt in sorted(self.unanswered, key=lambda a: a.sent_at):
            match = next((s for s in candidates if s.session_id not in adopted and attempt.could_have_made(s)), None)
            if match is not None:
                adopted.append(match.session_id)
                self.unanswered.remove(attempt)
        for session_id in adopted:
            log.info("%s session %s was made for a request whose reply was lost: stopping it",
                     self._label, session_id[:8])
            self.open.add(session_id)
            await self.stop(session_id)
        return len(adopted)

    async def close_leftovers(self, live: frozenset[str], everything: bool = False) -> int:
        """The page's clean-up: `close_ours`, or with `everything` (an operator's call) every
        session listed under the key but the `live` ones here."""
        if self.creating:  # its session is not in `live` yet
            raise StillCreatingError(f"A {self._label} session is being created right now; try again in a moment.")
        if not everything:
            return await self.close_ours(live)
        stopped = 0
        for session in await self._list_sessions():
            if session.session_id not in live and await self._try_stop(session.session_id):
                self._stopped(session.session_id)
                stopped += 1
        return stopped

    async def close_ours(self, live: frozenset[str]) -> int:
        """"Close my open sessions": every session of ours no live session uses (failed stops
        tried now, lost creations looked for). Returns how many were stopped."""
        unused = self.open - live  # now: a session made while the listing runs is not unused
        try:
            stopped = await self.reconcile()
        except Exception as exc:
            log.warning("listing %s sessions failed (%s)", self._label, type(exc).__name__)
            stopped = 0
        for session_id in sorted(unused):
            if session_id in self.unstopped:  # being retried: one try now, its retries go on if it fails
                if await self._try_stop(session_id):
                    self._stopped(session_id)
            else:
                await self.stop(session_id)  # failing now, it is retried like any other stop
            stopped += session_id not in self.open
        return stopped

    async def close(self) -> None:
        """Shutdown: wait for creations in flight (the caller stops what they made), look
        for lost ones, and try every unconfirmed stop once more."""
        await self._none_creating.wait()
        await self._tasks.cancel_all()
        try:
            await self.reconcile()
        except Exception as exc:
            log.warning("listing %s sessions at shutdown failed (%s)", self._label, type(exc).__name__)
        await self._tasks.cancel_all()  # retries the adoptions started: one last try below instead
        for session_id in sorted(self.unstopped):
            if await self._try_stop(session_id):
                self._stopped(session_id)
        if self.unstopped or self.unanswered:
            log.error("%s did not confirm stopping %d session(s) (and %d creation(s) lost their reply); "
                      "they end at its idle timeout", self._label, len(self.unstopped), len(self.unanswered))
