"""What each button does, per browser, independent of Gradio.

Every action either succeeds and logs what happened, or raises UserError after
logging the message, having changed nothing. `app.py` turns UserError into
gr.Error, so the page shows it and "Use via API" callers get it as an error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field, replace

from .backgrounds import BackgroundChoice, BackgroundError, load_upload, parse_color
from .conversation import Conversation, Message
from .llm import LLM, NOT_CONFIGURED
from .provider import ProviderError
from .providers import Choices, HeyGenProviders, LocalProviders
from .session import AvatarSession, SessionState, UserError
from .sessions import SessionManager
from .status_log import StatusLog

log = logging.getLogger(__name__)
BROWSER_FORGET_S = 3600  # a browser with no session and no action for this long is forgotten


@dataclass
class Browser:
    log: StatusLog = field(default_factory=StatusLog)
    session_id: str | None = None
    creating: bool = False  # a New is in progress: a second one must not orphan it
    background: BackgroundChoice = field(default_factory=BackgroundChoice)
    last_seen: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class TalkSettings:
    llm: LLM | None = None
    system_prompt: str = "You are a friendly demo avatar. Answer in one or two short sentences."
    max_history_turns: int = 10


class Controller:
    def __init__(self, sessions: SessionManager, providers: LocalProviders | HeyGenProviders | None = None,
                 talk: TalkSettings | None = None) -> None:
        self.sessions = sessions
        self.providers = providers or LocalProviders()
        self.talk_settings = talk or TalkSettings()
        self._browsers: dict[str, Browser] = {}

    # --- browsers ------------------------------------------------------------------------
    def browser(self, key: str) -> Browser:
        browser = self._browsers.get(key)
        if browser is None:
            self._forget_stale_browsers()
            browser = self._browsers[key] = Browser()
            browser.log.add("Welcome. Pick an avatar, a voice and a quality, then click New.")
        browser.last_seen = time.monotonic()
        return browser

    def _forget_stale_browsers(self) -> None:
        now = time.monotonic()
        for key, b in list(self._browsers.items()):
            if now - b.last_seen > BROWSER_FORGET_S and self.sessions.get(b.session_id) is None:
                del self._browsers[key]

    def _fail(self, browser: Browser, message: str) -> UserError:
        browser.log.add(f"Error: {message}")
        return UserError(message)

    def _session(self, browser: Browser, action: str) -> AvatarSession:
        session = self.sessions.get(browser.session_id)
        if session is None or session.state is SessionState.CLOSED:
            raise self._fail(browser, f"There is no open session to {action}. Click New first.")
        return session

    # --- actions -------------------------------------------------------------------------
    async def new_session(self, key: str, avatar_id: str, voice_id: str, quality: str) -> str:
        browser = self.browser(key)
        current = self.sessions.get(browser.session_id)
        if current is not None and current.state is not SessionState.CLOSED:
            raise self._fail(browser, f"Session {current.short_id} is already open. Click Close before "
                                      "creating a new one.")
        if browser.creating:
            raise self._fail(browser, "A session is already being created; wait for it.")
        browser.log.add("Creating a new session... please wait")
        browser.creating = True
        try:
            session = await self.sessions.create(key, browser.log, avatar_id, voice_id, quality)
        except UserError as exc:
            raise self._fail(browser, str(exc)) from None
        finally:
            browser.creating = False
        if self._browsers.get(key) is not browser:  # the tab closed while it was being built
            await self.sessions.close(session, "the page was closed")
            raise UserError("The page was closed.")
        browser.session_id = session.id
        session.conversation = Conversation(self.talk_settings.system_prompt, self.talk_settings.max_history_turns)
        if hasattr(session.provider, "on_reply"):  # HeyGen's own LLM answers into the same transcript
            session.provider.on_reply = session.conversation.answered_elsewhere
        await self._apply_background(browser, session)
        browser.log.add(f"Session {session.short_id} created ({session.provider.description}). "
                        "Click Start to begin the stream.")
        return session.id

    async def start(self, key: str) -> str:
        browser = self.browser(key)
        session = self._session(browser, "start")
        try:
            await session.start()
        except UserError as exc:
            raise self._fail(browser, str(exc)) from None
        return session.id

    async def repeat(self, key: str, text: str) -> None:
        browser = self.browser(key)
        session = self._session(browser, "speak in")
        try:
            await session.speak(text or "")
        except UserError as exc:
            raise self._fail(browser, str(exc)) from None
        browser.log.add(f"Repeat sent ({len(text.strip())} characters).")

    async def talk(self, key: str, text: str, answer_with: str = "llm") -> str:
        """Ask the LLM (ours, or HeyGen's with answer_with="heygen"); the avatar says the reply
        sentence by sentence as it streams in. Returns what was said."""
        browser = self.browser(key)
        session = self._session(browser, "talk in")
        conversation = session.conversation
        try:
            if conversation is None:
                raise UserError("This session cannot talk.")
            if conversation.busy:
                raise UserError("The avatar is still answering. Click Interrupt first, or wait.")
            if answer_with == "heygen":
                native_talk = getattr(session.provider, "talk", None)
                if native_talk is None:
                    raise UserError("HeyGen's own LLM is only there with AVATAR_PROVIDER=heygen.")
                text = await session.ready_to_speak(text)
                conversation.asked_elsewhere(text)
                await native_talk(text)
                browser.log.add("Talk sent to HeyGen's LLM; the answer is spoken as it comes.")
                return ""
            if self.talk_settings.llm is None:
                raise UserError(NOT_CONFIGURED)
            text = await session.ready_to_speak(text)
            if conversation.busy:  # another Talk started while this one waited for the stream
                raise UserError("The avatar is still answering. Click Interrupt first, or wait.")
            browser.log.add("Asking the LLM...")
            conversation.task = asyncio.ensure_future(conversation.talk(self.talk_settings.llm, text, session.say))
            reply = await conversation.task
        except UserError as exc:
            raise self._fail(browser, str(exc)) from None
        except ProviderError as exc:  # LLMError, or the avatar failing to speak
            raise self._fail(browser, str(exc)) from None
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # this request itself was cancelled (the awaited reply is cancelled with it)
            browser.log.add("The answer was interrupted.")
            return ""
        except Exception as exc:  # anything unforeseen: one line in the page, details in the server log
            log.exception("talk failed")
            raise self._fail(browser, f"Talk failed ({type(exc).__name__}). Try again.") from None
        browser.log.add(f"The LLM answered in {len(reply)} characters.")
        return reply

    async def interrupt(self, key: str) -> None:
        browser = self.browser(key)
        session = self._session(browser, "interrupt")
        try:
            await session.interrupt()
        except ProviderError as exc:
            raise self._fail(browser, str(exc)) from None
        browser.log.add("Interrupted: the avatar stopped speaking.")

    def transcript(self, key: str, seen_version: int | None = None) -> tuple[int, list[Message] | None]:
        """(version, messages); messages is None when `seen_version` is already current."""
        session = self.sessions.get(self.browser(key).session_id)
        if session is None or session.conversation is None:
            return -1, None if seen_version == -1 else []
        conversation = session.conversation
        if conversation.version == seen_version:
            return seen_version, None
        return conversation.version, [dict(m) for m in conversation.transcript]

    async def close(self, key: str, reason: str = "closed by you") -> None:
        browser = self.browser(key)
        session = self._session(browser, "close")
        browser.log.add("Closing the session... please wait")
        await self.sessions.close(session, reason)

    async def set_background(self, key: str, remove: bool, kind: str, color: str, preset: str,
                             upload_path: str | None) -> str:
        browser = self.browser(key)
        try:
            choice = replace(browser.background, remove=bool(remove), kind=kind)
            if kind == "color":
                choice = replace(choice, color=parse_color(color))
            elif kind == "preset":
                choice = replace(choice, preset=preset)
            elif kind == "upload":
                if upload_path:
                    choice = replace(choice, upload=await asyncio.to_thread(load_upload, upload_path))
            else:
                raise BackgroundError(f"Unknown background kind {kind!r}; use color, preset or upload.")
            session = self.sessions.get(browser.session_id)
            live = session is not None and session.state is not SessionState.CLOSED
            width, height = session.pipeline.size if live else (64, 36)  # no session: just validate
            frame = await asyncio.to_thread(choice.render, width, height)
            if live:
                session.set_background(frame)
        except BackgroundError as exc:
            raise self._fail(browser, str(exc)) from None
        browser.background = choice
        browser.log.add(choice.describe())
        return choice.describe()

    async def _apply_background(self, browser: Browser, session: AvatarSession) -> None:
        width, height = session.pipeline.size
        try:
            frame = await asyncio.to_thread(browser.background.render, width, height)
        except BackgroundError as exc:
            browser.log.add(f"Background left as green screen: {exc}")
            return
        session.set_background(frame)

    async def choices(self, key: str) -> tuple[Choices, Choices]:
        """Avatar and voice IDs to offer; a listing problem goes to the log, not an error."""
        avatars, voices, problem = await self.providers.choices()
        if problem:
            self.browser(key).log.add(problem)
        return avatars, voices

    async def close_leaked_upstream(self, key: str) -> int:
        """HeyGen: stop sessions under our key that no live session here owns."""
        browser = self.browser(key)
        if not isinstance(self.providers, HeyGenProviders):
            raise self._fail(browser, "There are no upstream sessions: the avatar is the built-in offline one.")
        live = frozenset(getattr(s.provider, "upstream_id", "") for s in self.sessions.all())
        try:
            closed = await self.providers.close_leaked(live)
        except ProviderError as exc:
            raise self._fail(browser, str(exc)) from None
        browser.log.add(f"Closed {closed} leftover HeyGen session(s) under this key.")
        return closed

    async def unload(self, key: str) -> None:
        """The tab was closed: close its session and forget the browser."""
        browser = self._browsers.pop(key, None)
        if browser is not None:
            await self.sessions.close_owner(key, "the page was closed")

    def status(self, key: str) -> tuple[int, str]:
        browser = self.browser(key)
        return browser.log.version, browser.log.text()
