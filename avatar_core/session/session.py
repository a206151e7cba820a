"""One avatar session: its lifecycle, its avatar, its media clock and its conversation.

State is derived from the parts (aiortc style); the parts report through one event
path (events.py) that arrives here on the event loop; every exit path (Close, tab
closed, idle timeout, media failure, server shutdown) goes through one idempotent
`close()` (pipecat style), which cancels and awaits everything the session started.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum

import numpy as np

from ..errors import AvatarError, SpeechQueueFullError, UserError, describe
from ..events import (
    MediaFailed,
    NativeReply,
    SessionEvent,
    SessionEvents,
    SpeakingChanged,
    UpstreamMessage,
    ViewerChanged,
    ViewerKind,
)
from ..media.clock import MediaClock
from ..providers.base import MAX_TEXT_CHARS, Avatar
from ..talk.conversation import Conversation
from ..talk.llm import LLM
from ..tasks import TaskOwner
from ..voice.listener import Listener
from .status_log import StatusLog
from .stream_stats import FirstSpeech, StreamStats, measure

log = logging.getLogger(__name__)
CONNECT_WAIT_S = 8.0  # Repeat/Talk right after Start wait this long for the stream
CONNECT_HELP_S = 8.0  # a stream not connected by then gets connection help in the log
SAY_RETRY_S = 0.1  # Talk's next sentence, while the avatar's queue is full
SPEAKING_GAP_S = 1.0  # speech with shorter gaps (between sentences) is one stretch of speaking


class SessionState(StrEnum):
    NEW = "new"  # created, not streaming yet
    CONNECTING = "connecting"  # Start clicked, viewers not attached yet
    LIVE = "live"  # video and audio are flowing to a viewer
    CLOSED = "closed"  # closing or closed: nothing more is accepted


class AvatarSession:
    def __init__(self, session_id: str, owner: str, avatar: Avatar, events: SessionEvents, log: StatusLog,
                 conversation: Conversation, video_delay_ticks: int = 0,
                 on_closed: Callable[[AvatarSession, str], None] | None = None, connection_help: str = "",
                 client: str = "") -> None:
        self.id = session_id
        self.owner = owner
        self.client = client  # the address it was created from (the per-client limit)
        self.log = log
        self.avatar = avatar
        self.conversation = conversation
        self.clock = MediaClock(avatar, events, video_delay_ticks)
        self.events = events  # the parts report here; the streams too
        self._on_closed = on_closed
        self._connection_help = connection_help
        self._tasks = TaskOwner(f"session-{session_id[:8]}")
        self._reply: asyncio.Task[str] | None = None  # our LLM's answer being spoken
        self.last_activity = time.monotonic()
        self._start_requested = False
        self._viewers = {"video": 0, "audio": 0}
        self._live = asyncio.Event()
        self._closing: asyncio.Task[None] | None = None
        self._speaking = False
        self._stretch_began = 0.0  # when the avatar's current stretch of speaking began
        self._quiet_since = float("-inf")
        self.listener: Listener | None = None  # voice input, once a microphone connects
        self.first_speech = FirstSpeech()  # Repeat/Talk -> speech, for the stream stats
        events.listen(self._on_event)

    # --- derived state -------------------------------------------------------------------
    @property
    def state(self) -> SessionState:
        if self._closing is not None:
            return SessionState.CLOSED
        if all(self._viewers.values()):
            return SessionState.LIVE
        return SessionState.CONNECTING if self._start_requested else SessionState.NEW

    @property
    def short_id(self) -> str:
        return self.id[:8]

    @property
    def answering(self) -> bool:
        return self._reply is not None and not self._reply.done()

    def avatar_busy_s(self) -> float | None:
        """How long the avatar has been speaking (short gaps included); inf while it is
        answering but not speaking; None when it is quiet (voice input's barge-in)."""
        if self._speaking:
            return time.monotonic() - self._stretch_began
        return float("inf") if self.answering else None

    def touch(self) -> None:
        self.last_activity = time.monotonic()

    def stream_stats(self) -> StreamStats:
        return measure(self.clock, self.avatar, self.first_speech, time.monotonic())

    # --- actions -------------------------------------------------------------------------
    async def start(self) -> None:
        if self._start_requested:
            raise UserError("The stream is already started for this session.")
        self._start_requested = True
        self.touch()
        self.log.add("Starting the stream... (connecting video and audio)")
        try:
            await self.avatar.start()
        except BaseException as exc:  # whatever went wrong, the upstream session must not leak
            why = describe(exc)
            await asyncio.shield(self.close(f"could not start: {why}"))
            if isinstance(exc, Exception):
                raise UserError(f"Could not start: {why} The session was closed; click New to try again.") from None
            raise
        if self.state is SessionState.CLOSED:  # closed while it was connecting
            raise UserError("The session was closed while it was starting. Click New to begin again.")
        self.clock.start()
        self._tasks.spawn(self._help_if_not_connected(), "connection-help")

    async def _help_if_not_connected(self) -> None:
        await asyncio.sleep(CONNECT_HELP_S)
        if self.state is SessionState.CONNECTING and not self._live.is_set():
            self.log.add(f"Error: the stream has not connected after {CONNECT_HELP_S:.0f} s. "
                         f"{self._connection_help}".rstrip())

    async def ready_to_speak(self, text: str) -> str:
        """The trimmed text, once the stream is live; UserError says what is missing."""
        text = text.strip()
        if not text:
            raise UserError("Type a message for the avatar first.")
        if len(text) > MAX_TEXT_CHARS:
            raise UserError(f"The message is {len(text)} characters; the limit is {MAX_TEXT_CHARS}.")
        if not self._start_requested:
            raise UserError("Click Start to begin the stream before sending a message.")
        if self.state is SessionState.CONNECTING:
            try:
                await asyncio.wait_for(self._live.wait(), CONNECT_WAIT_S)
            except TimeoutError:
                raise UserError("The stream has not connected yet. Wait for the video to appear, "
                                "then try again.") from None
        if self.state is SessionState.CLOSED:
            raise UserError("The session was closed. Click New to begin again.")
        self.touch()
        return text

    async def speak(self, text: str) -> None:
        """Repeat: `text` is said as it is."""
        text = await self.ready_to_speak(text)
        with self._first_speech_asked():
            await self._upstream(self.avatar.speak(text))

    async def say(self, sentence: str) -> None:
        """Talk's sentences: when the avatar's queue is full, wait for room instead of refusing."""
        while True:
            try:
                await self._upstream(self.avatar.speak(sentence[:MAX_TEXT_CHARS]))
                self.touch()
                return
            except SpeechQueueFullError:
                await asyncio.sleep(SAY_RETRY_S)

    async def answer(self, llm: LLM, text: str) -> str:
        """Talk with our LLM: its reply is spoken sentence by sentence as it streams in.
        Returns what was said; CancelledError when Interrupt ended it."""
        if self.answering:
            raise UserError("The avatar is still answering. Click Interrupt first, or wait.")
        with self._first_speech_asked():
            self._reply = self._tasks.spawn(self.conversation.talk(llm, text, self.say), "talk", awaited=True)
            return await self._reply

    async def answer_natively(self, text: str) -> None:
        """Talk with the provider's own LLM: the answer arrives as a NativeReply event."""
        self.conversation.asked_elsewhere(text)
        with self._first_speech_asked():
            await self._upstream(self.avatar.talk(text))

    @contextmanager
    def _first_speech_asked(self) -> Iterator[None]:
        """Accepted text: the stats time it to the first speech; a failed ask is withdrawn."""
        at = time.monotonic()
        self.first_speech.asked(at, self._speaking)
        try:
            yield
        except BaseException:
            self.first_speech.cancel(at)
            raise

    async def interrupt(self) -> None:
        """Stop talking now: end the LLM reply in progress (and any sentence it is handing
        over), then drop queued speech, so nothing reaches the avatar after the interrupt."""
        await self._tasks.cancel(self._reply)
        self.first_speech.cancel()
        self.touch()
        await self._upstream(self.avatar.interrupt())
        self.clock.clear()

    def set_background(self, background: np.ndarray | None) -> None:
        self.touch()
        self.clock.set_background(background)

    async def _upstream(self, call: Awaitable[None]) -> None:
        """A call to the avatar: when its session is gone upstream, ours closes too."""
        try:
            await call
        except AvatarError as exc:
            if exc.session_is_gone:
                await self.close(str(exc))
            raise

    # --- events from the parts (always on the loop) --------------------------------------
    def _on_event(self, event: SessionEvent) -> None:
        match event:
            case SpeakingChanged(speaking=speaking, at=at):
                self._speaking_changed(speaking)
                if speaking:
                    self.first_speech.spoke(at)
                self.log.add("Avatar started speaking." if speaking else "Avatar finished speaking.")
            case UpstreamMessage(text=text):
                self.log.add(text)
            case NativeReply(text=text):
                self.conversation.answered_elsewhere(text)
            case ViewerChanged(kind=kind, attached=attached):
                self._viewer_changed(kind, attached)
            case MediaFailed(error=error) if self._closing is None:
                self.log.add(f"The stream stopped because of {describe(error)}. Click New to begin again.")
                self._begin_close("media failure")

    def _speaking_changed(self, speaking: bool) -> None:
        now = time.monotonic()
        if speaking and now - self._quiet_since > SPEAKING_GAP_S:
            self._stretch_began = now  # a new stretch; after a short gap, the old one goes on
        if not speaking:
            self._quiet_since = now
        self._speaking = speaking

    def _viewer_changed(self, kind: ViewerKind, attached: bool) -> None:
        self._viewers[kind] = max(0, self._viewers[kind] + (1 if attached else -1))
        if self.state is SessionState.LIVE and not self._live.is_set():
            self._live.set()
            self.log.add("Stream connected: video and audio are playing.")

    # --- the one teardown ----------------------------------------------------------------
    async def close(self, reason: str) -> None:
        """Idempotent: the first call tears down, later calls wait for it."""
        await asyncio.shield(self._begin_close(reason))

    def _begin_close(self, reason: str) -> asyncio.Task[None]:
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._teardown(reason),
                                                                  name=f"close-{self.short_id}")
        return self._closing

    async def _teardown(self, reason: str) -> None:
        try:
            if self.listener is not None:  # nothing more is heard or acted on
                await self.listener.close()
            await self._tasks.cancel_all()  # the reply being spoken, the connection help
            await asyncio.to_thread(self.clock.stop)  # joins the clock thread: not on the loop
            try:
                await self.avatar.close()
            except Exception:  # the rest of the teardown must still happen
                log.exception("closing session %s's avatar failed", self.short_id)
        finally:
            self.events.close()
            self.log.add(f"Session {self.short_id} closed ({reason}).")
            if self._on_closed is not None:
                self._on_closed(self, reason)
