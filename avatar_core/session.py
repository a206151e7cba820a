"""One avatar session: its lifecycle, its provider and its media clock.

State is derived from the parts (aiortc style), and every exit path (Close, tab
closed, idle timeout, media failure, server shutdown) goes through one idempotent
`close()` (pipecat style).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from enum import StrEnum

import numpy as np

from .conversation import Conversation
from .media import MediaPipeline
from .provider import AvatarProvider, ProviderError, SpeechQueueFullError
from .speech import MAX_TEXT_CHARS
from .status_log import StatusLog

CONNECT_WAIT_S = 8.0
CONNECT_HELP_S = 8.0  # a stream not connected by then gets connection help in the log


class UserError(Exception):
    """Something the person can fix; the message says what. Nothing was changed."""


class SessionState(StrEnum):
    NEW = "new"  # created, not streaming yet
    CONNECTING = "connecting"  # Start clicked, viewer not attached yet
    LIVE = "live"  # video and audio are flowing to a viewer
    CLOSED = "closed"


class AvatarSession:
    def __init__(self, session_id: str, owner: str, provider: AvatarProvider, log: StatusLog,
                 video_delay_ticks: int = 0, on_closed: Callable[[AvatarSession, str], None] | None = None,
                 connection_help: str = "") -> None:
        self.id = session_id
        self.owner = owner
        self.log = log
        self.provider = provider
        provider.on_event = log.add  # background problems (e.g. a failed synthesis) reach the page
        self._on_closed = on_closed
        self._connection_help = connection_help
        self.pipeline = MediaPipeline(provider, video_delay_ticks, on_speaking=self._on_speaking,
                                      on_failure=self._on_failure)
        self.last_activity = time.monotonic()
        self.conversation: Conversation | None = None  # set by whoever offers Talk
        self._start_requested = False
        self._viewers = {"video": 0, "audio": 0}
        self._live = asyncio.Event()
        self._close_task: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()

    # --- derived state -------------------------------------------------------------------
    @property
    def state(self) -> SessionState:
        if self._close_task is not None:
            return SessionState.CLOSED
        if all(self._viewers.values()):
            return SessionState.LIVE
        return SessionState.CONNECTING if self._start_requested else SessionState.NEW

    @property
    def short_id(self) -> str:
        return self.id[:8]

    def touch(self) -> None:
        self.last_activity = time.monotonic()

    # --- actions -------------------------------------------------------------------------
    async def start(self) -> None:
        if self._start_requested:
            raise UserError("The stream is already started for this session.")
        self._start_requested = True
        self.touch()
        self.log.add("Starting the stream... (connecting video and audio)")
        try:
            await self.provider.start()
        except BaseException as exc:  # whatever went wrong, the upstream session must not leak
            why = str(exc) if isinstance(exc, ProviderError) else f"an internal error ({type(exc).__name__})"
            await asyncio.shield(self.close(f"could not start: {why}"))
            if isinstance(exc, Exception):
                raise UserError(f"Could not start: {why} The session was closed; click New to try again.") from None
            raise
        if self.state is SessionState.CLOSED:  # closed while it was connecting
            raise UserError("The session was closed while it was starting. Click New to begin again.")
        self.pipeline.start()
        self._loop.call_later(CONNECT_HELP_S, self._help_if_not_connected)

    def _help_if_not_connected(self) -> None:
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
        text = await self.ready_to_speak(text)
        try:
            await self.provider.speak(text)
        except SpeechQueueFullError as exc:
            raise UserError(f"{exc} Wait for the avatar to finish, then send more.") from None
        except ProviderError as exc:
            if exc.session_is_gone:
                await self.close(str(exc))
            raise UserError(str(exc)) from None

    async def say(self, sentence: str) -> None:
        """Talk's sentences: when the avatar's queue is full, wait for room instead of refusing."""
        while True:
            try:
                await self.provider.speak(sentence[:MAX_TEXT_CHARS])
                self.touch()
                return
            except SpeechQueueFullError:
                await asyncio.sleep(0.1)
            except ProviderError as exc:
                if exc.session_is_gone:
                    await self.close(str(exc))
                raise

    async def interrupt(self) -> None:
        """Stop talking now: end the LLM reply in progress (and any sentence it is handing
        over), then drop queued speech, so nothing reaches the avatar after the interrupt."""
        task = self.conversation.task if self.conversation is not None else None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task})
        self.touch()
        await self.provider.interrupt()

    def set_background(self, background: np.ndarray | None) -> None:
        self.touch()
        self.pipeline.set_background(background)

    # --- viewers (the two WebRTC streams) ------------------------------------------------
    def viewer_attached(self, kind: str) -> None:
        """Called by the streams, from the event loop (video) or an executor thread (audio)."""
        self._viewers[kind] += 1
        self._loop.call_soon_threadsafe(self._mark_live_once)

    def _mark_live_once(self) -> None:
        if self.state is SessionState.LIVE and not self._live.is_set():
            self._live.set()
            self.log.add("Stream connected: video and audio are playing.")

    def viewer_detached(self, kind: str) -> None:
        self._viewers[kind] = max(0, self._viewers[kind] - 1)

    # --- events from the clock thread ----------------------------------------------------
    def _on_speaking(self, speaking: bool) -> None:
        self.log.add("Avatar started speaking." if speaking else "Avatar finished speaking.")

    def _on_failure(self, exc: BaseException) -> None:
        why = str(exc) if isinstance(exc, ProviderError) else f"an internal error ({type(exc).__name__})"
        self.log.add(f"The stream stopped because of {why}. Click New to begin again.")
        self._loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self.close("media failure")))

    # --- the one teardown ----------------------------------------------------------------
    async def close(self, reason: str) -> None:
        """Idempotent: the first call tears down, later calls wait for it."""
        if self._close_task is None:
            self._close_task = asyncio.ensure_future(self._teardown(reason))
        await asyncio.shield(self._close_task)

    async def _teardown(self, reason: str) -> None:
        if self.conversation is not None and self.conversation.busy:
            self.conversation.task.cancel()
        try:
            await asyncio.to_thread(self.pipeline.stop)  # joins the clock thread: not on the loop
            await self.provider.close()
        finally:
            self.log.add(f"Session {self.short_id} closed ({reason}).")
            if self._on_closed is not None:
                self._on_closed(self, reason)
