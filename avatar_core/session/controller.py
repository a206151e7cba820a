"""What each button does, per browser, independent of Gradio.

Every action either succeeds and logs what happened, or raises an AvatarError after
logging its message, having changed nothing. `app.py` turns AvatarError into
gr.Error, so the page shows it and "Use via API" callers get it as an error.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from ..errors import AvatarError, UserError
from ..media.backgrounds import BackgroundChoice, BackgroundError, load_upload, parse_color
from ..providers.base import MAX_TEXT_CHARS, Choices, parse_quality
from ..talk.conversation import Conversation, Message
from ..talk.llm import LLM, NOT_CONFIGURED
from ..text import shown
from ..voice.listener import MICROPHONE_CONNECT_S, Listener
from ..voice.recognizer import Recognizer
from . import inputs
from .manager import SessionManager
from .session import AvatarSession, SessionState
from .status_log import StatusLog
from .stream_stats import CpuMeter, ProcessStats, StatsReport, usable_cores

log = logging.getLogger(__name__)
BROWSER_FORGET_S = 3600  # a browser with no session and no action for this long is forgotten
MAX_BROWSERS = 1000  # beyond this, the browsers without an open session seen longest ago are forgotten
MICROPHONE_HELP = ("The browser did not give the page a microphone. Allow this page to use it (the browser asks, "
                   "or see the icon in its address bar), check that one is connected, then click the microphone "
                   "again.")
OUR_LLM = "llm"  # Talk's "Answers from" value for our LLM; a provider's own is its name
MAX_PICTURE_BYTES = 64_000_000  # uploaded pictures kept for all browsers (each <= 400 KB as a JPEG)
NO_SESSION_SIZE = (64, 36)  # a background chosen before New is only checked, at this size


@dataclass
class Browser:
    log: StatusLog = field(default_factory=StatusLog)
    session_id: str | None = None
    creating: bool = False  # a New is in progress: a second one must not orphan it
    background: BackgroundChoice = field(default_factory=BackgroundChoice)
    answer_with: str = OUR_LLM  # "Answers from", for what is said by voice
    last_seen: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class TalkSettings:
    llm: LLM | None
    system_prompt: str
    max_history_turns: int


@dataclass(frozen=True)
class VoiceSettings:
    recognizer: Recognizer  # shared by every session
    pause_ms: int
    max_turn_s: float
    microphone_connect_s: float = MICROPHONE_CONNECT_S  # switched on, its audio should arrive by then


class Controller:
    def __init__(self, sessions: SessionManager, talk: TalkSettings, operator_token: str | None = None,
                 voice: VoiceSettings | None = None) -> None:
        self.sessions = sessions
        self.voice = voice
        self._operator_token = operator_token  # allows closing every upstream session under the key
        self.service = sessions.service
        self.talk_settings = talk
        self._browsers: dict[str, Browser] = {}
        self.max_picture_bytes = MAX_PICTURE_BYTES
        self._cpu = CpuMeter()
        self._cores = usable_cores()

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
        idle = [(b.last_seen, key) for key, b in self._browsers.items() if self.sessions.get(b.session_id) is None]
        for last_seen, key in idle:
            if now - last_seen > BROWSER_FORGET_S:
                del self._browsers[key]
        excess = len(self._browsers) - (MAX_BROWSERS - 1)  # room for the one being added
        for _, key in sorted(idle)[:max(0, excess)]:  # a crowd of API callers: the longest-unseen go
            self._browsers.pop(key, None)

    @contextmanager
    def _reported(self, browser: Browser, action: str) -> Iterator[None]:
        """The one place an action's failure becomes a line in the log and an AvatarError
        for the page; anything unforeseen is logged in full on the server only."""
        try:
            yield
        except AvatarError as exc:
            browser.log.add(f"Error: {exc}")
            raise
        except Exception as exc:
            log.exception("%s failed", action)
            message = f"{action} failed ({type(exc).__name__}). Try again."
            browser.log.add(f"Error: {message}")
            raise AvatarError(message) from None

    def _open_session(self, browser: Browser, action: str) -> AvatarSession:
        session = self.sessions.get(browser.session_id)
        if session is None or session.state is SessionState.CLOSED:
            raise UserError(f"There is no open session to {action}. Click New first.")
        return session

    # --- actions -------------------------------------------------------------------------
    async def new_session(self, key: str, avatar_id: object, voice_id: object, quality: object,
                          client: str = "") -> str:
        """`client`: the caller's address, for MAX_SESSIONS_PER_CLIENT."""
        browser = self.browser(key)
        with self._reported(browser, "New"):
            avatar_id = inputs.identifier(avatar_id, "The avatar ID")
            voice_id = inputs.identifier(voice_id, "The voice ID")
            size = parse_quality(inputs.choice(quality, "The quality"))
            current = self.sessions.get(browser.session_id)
            if current is not None and current.state is not SessionState.CLOSED:
                raise UserError(f"Session {current.short_id} is already open. Click Close before "
                                "creating a new one.")
            if browser.creating:
                raise UserError("A session is already being created; wait for it.")
            browser.log.add("Creating a new session... please wait")
            browser.creating = True
            try:
                conversation = Conversation(self.talk_settings.system_prompt, self.talk_settings.max_history_turns)
                session = await self.sessions.create(key, browser.log, avatar_id, voice_id, size, conversation,
                                                     client)
            finally:
                browser.creating = False
            if self._browsers.get(key) is not browser:  # the tab closed while it was being built
                await session.close("the page was closed")
                raise UserError("The page was closed.")
        browser.session_id = session.id
        await self._apply_background(browser, session)
        browser.log.add(f"Session {session.short_id} created ({session.avatar.description}). "
                        "Click Start to begin the stream.")
        return session.id

    async def start(self, key: str) -> str:
        browser = self.browser(key)
        with self._reported(browser, "Start"):
            session = self._open_session(browser, "start")
            if session.state is SessionState.NEW:  # its load comes now: admitted like a New
                self.sessions.check_admission()
            await session.start()
            self.sessions.stream_started()
        return session.id

    async def repeat(self, key: str, text: object) -> None:
        browser = self.browser(key)
        with self._reported(browser, "Repeat"):
            text = inputs.message(text)
            session = self._open_session(browser, "speak in")
            await session.speak(text)
        browser.log.add(f"Repeat sent ({len(text.strip())} characters).")

    async def talk(self, key: str, text: object, answer_with: object = OUR_LLM) -> str:
        """Ask our LLM (or the provider's own, answer_with=its name); the avatar says the
        reply sentence by sentence as it streams in. Returns what was said."""
        browser = self.browser(key)
        with self._reported(browser, "Talk"):
            text = inputs.message(text)
            answer_with = inputs.choice(answer_with, "The choice of LLM") or OUR_LLM
            session = self._open_session(browser, "talk in")
            if session.answering:
                raise UserError("The avatar is still answering. Click Interrupt first, or wait.")
            if answer_with != OUR_LLM:
                if answer_with != self.service.name or not self.service.capabilities.own_llm:
                    raise UserError(f"Unknown choice of LLM {shown(answer_with)}: this avatar answers with "
                                    f"{self._llm_names()}.")
                await session.answer_natively(await session.ready_to_speak(text))
                browser.log.add(f"Talk sent to {self.service.capabilities.own_llm}; the answer is spoken "
                                "as it comes.")
                return ""
            llm = self.talk_settings.llm
            if llm is None:
                raise UserError(NOT_CONFIGURED)
            text = await session.ready_to_speak(text)
            browser.log.add("Asking the LLM...")
            try:
                reply = await session.answer(llm, text)
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # this request itself was cancelled (the reply is cancelled with the session)
                browser.log.add("The answer was interrupted.")
                return ""
        browser.log.add(f"The LLM answered in {len(reply)} characters.")
        return reply

    def _llm_names(self) -> str:
        own = self.service.capabilities.own_llm
        return f"{OUR_LLM!r} or {self.service.name!r}" if own else f"{OUR_LLM!r} only"

    async def interrupt(self, key: str) -> None:
        browser = self.browser(key)
        with self._reported(browser, "Interrupt"):
            session = self._open_session(browser, "interrupt")
            await session.interrupt()
        browser.log.add("Interrupted: the avatar stopped speaking.")

    # --- voice input ---------------------------------------------------------------------
    def set_answer_with(self, key: str, answer_with: object) -> None:
        """The page's "Answers from", kept for what is said by voice."""
        browser = self.browser(key)
        with self._reported(browser, "Answers from"):
            value = inputs.choice(answer_with, "The choice of LLM") or OUR_LLM
            if value != OUR_LLM and (value != self.service.name or not self.service.capabilities.own_llm):
                raise UserError(f"Unknown choice of LLM {shown(value)}: this avatar answers with "
                                f"{self._llm_names()}.")
        browser.answer_with = value

    def listener(self, key: str | None) -> Listener | None:
        """The listener of this browser's started session (made on first use), for its microphone."""
        browser = self._browsers.get(key) if key is not None else None
        session = self.sessions.get(browser.session_id) if browser is not None else None
        if self.voice is None or session is None or session.state not in (SessionState.CONNECTING, SessionState.LIVE):
            return None
        if session.listener is None:
            session.listener = Listener(VoiceOfBrowser(self, key or "", session), self.voice.recognizer,
                                        self.voice.pause_ms, self.voice.max_turn_s, self.voice.microphone_connect_s)
        return session.listener

    def microphone_on(self, key: str) -> None:
        """The page's microphone button was clicked on."""
        browser = self.browser(key)
        listener = self.listener(key)
        if self.voice is None:
            browser.log.add("Voice input is not available on this server.")
        elif listener is None:
            browser.log.add("The microphone works once the stream is started: click New, then Start, then "
                            "the microphone.")
        else:
            browser.log.add("Connecting your microphone... (allow the page to use it if the browser asks)")
            listener.expect_microphone()

    def microphone_refused(self, key: str) -> None:
        """The browser would not give the page a microphone (permission refused, or none)."""
        self.browser(key).log.add(MICROPHONE_HELP)

    def microphone_off(self, key: str) -> None:
        listener = self.listener(key)
        if listener is not None:
            listener.microphone_switched_off()

    async def said(self, key: str, session: AvatarSession, text: str) -> None:
        """A spoken turn's words: answered as Talk is (per "Answers from"), or, with no LLM
        set up, repeated. The avatar still answering an earlier turn stops first."""
        browser = self._browsers.get(key)
        if browser is None or browser.session_id != session.id or session.state is SessionState.CLOSED:
            return  # the page or its session went away meanwhile
        text = text[:MAX_TEXT_CHARS]
        answered = browser.answer_with != OUR_LLM or self.talk_settings.llm is not None
        browser.log.add(f"Heard: \u201c{text}\u201d" + ("" if answered else
                        " (no LLM is set up, so the avatar says it back)"))
        try:
            if session.avatar_busy_s() is not None:
                with self._reported(browser, "Interrupt"):
                    await session.interrupt()
            if answered:
                await self.talk(key, text, browser.answer_with)
                return
            with self._reported(browser, "Repeat"):
                await session.speak(text)
            session.conversation.repeated(text)
        except AvatarError:
            pass  # its line is in the status log already

    async def barge_in(self, key: str, session: AvatarSession) -> None:
        """The person started speaking over the avatar: it stops, as with Interrupt."""
        browser = self._browsers.get(key)
        if browser is None or session.state is SessionState.CLOSED:
            return
        try:
            with self._reported(browser, "Interrupt"):
                await session.interrupt()
        except AvatarError:
            return
        browser.log.add("You started speaking: the avatar stopped to listen.")

    def transcript(self, key: str, seen_version: int | None = None) -> tuple[int, list[Message] | None]:
        """(version, messages); messages is None when `seen_version` is already current."""
        session = self.sessions.get(self.browser(key).session_id)
        if session is None:
            return -1, None if seen_version == -1 else []
        conversation = session.conversation
        if conversation.version == seen_version:
            return seen_version, None
        return conversation.version, [dict(m) for m in conversation.transcript]

    async def close(self, key: str, reason: str = "closed by you") -> None:
        browser = self.browser(key)
        with self._reported(browser, "Close"):
            session = self._open_session(browser, "close")
            browser.log.add("Closing the session... please wait")
            await session.close(reason)

    async def set_background(self, key: str, remove: object, kind: object, color: object, preset: object,
                             upload_path: object) -> str:
        browser = self.browser(key)
        with self._reported(browser, "Background"):
            remove = inputs.flag(remove, "Remove background")
            kind = inputs.choice(kind, "The background kind")
            color = inputs.choice(color, "The colour")
            preset = inputs.choice(preset, "The preset")
            upload_path = inputs.optional_path(upload_path, "The picture")
            choice = replace(browser.background, remove=bool(remove), kind=kind)
            if kind == "color":
                choice = replace(choice, color=parse_color(color))
            elif kind == "preset":
                choice = replace(choice, preset=preset)
            elif kind == "upload":
                if upload_path:
                    choice = replace(choice, upload=await asyncio.to_thread(load_upload, upload_path))
            else:
                raise BackgroundError(f"Unknown background kind {shown(kind)}; use color, preset or upload.")
            session = self.sessions.get(browser.session_id)
            live = session if session is not None and session.state is not SessionState.CLOSED else None
            width, height = live.clock.size if live is not None else NO_SESSION_SIZE
            frame = await asyncio.to_thread(choice.render, width, height)
            if live is not None:
                live.set_background(frame)
        browser.background = choice
        browser.log.add(choice.describe())
        if kind == "upload" and upload_path:
            self._bound_pictures(keep=browser)
        return choice.describe()

    def _bound_pictures(self, keep: Browser) -> None:
        """Over the budget, the pictures of browsers with no open session go, longest unseen first."""
        held = sorted((b.last_seen, key, len(b.background.upload.jpeg)) for key, b in self._browsers.items()
                      if b.background.upload is not None)
        total = sum(size for _, _, size in held)
        for _, key, size in held:
            if total <= self.max_picture_bytes:
                return
            browser = self._browsers[key]
            if browser is keep or self.sessions.get(browser.session_id) is not None:
                continue
            total -= size
            browser.background = replace(browser.background, upload=None)
            browser.log.add("Your uploaded picture was let go to make room (you had no open session); "
                            "upload it again to use it.")

    async def _apply_background(self, browser: Browser, session: AvatarSession) -> None:
        width, height = session.clock.size
        try:
            frame = await asyncio.to_thread(browser.background.render, width, height)
        except BackgroundError as exc:
            browser.log.add(f"Background left as green screen: {exc}")
            return
        session.set_background(frame)

    async def choices(self, key: str) -> Choices:
        """Avatar and voice IDs to offer; a listing problem goes to the log, not an error."""
        try:
            return await self.service.choices()
        except AvatarError as exc:
            self.browser(key).log.add(f"Could not list {self.service.label}'s avatars and voices: {exc} "
                                      "You can still type IDs.")
            return Choices()

    async def close_leaked_upstream(self, key: str, token: object = None) -> int:
        """Stop upstream sessions this server opened that no live session here uses; with the
        operator token, every session under the key but the live ones here."""
        browser = self.browser(key)
        with self._reported(browser, "Closing leftover sessions"):
            token = inputs.text(token, "The operator token", inputs.MAX_ID_CHARS)
            everything = bool(token)
            expected = (self._operator_token or "").encode()
            if everything and not (expected and hmac.compare_digest(token.encode(), expected)):
                raise UserError("That operator token is not right (or none is set on the server); leave it "
                                "empty to close the sessions this server opened.")
            live = frozenset(s.avatar.upstream_id for s in self.sessions.all() if s.avatar.upstream_id)
            closed = await self.service.close_leftovers(live, everything=everything)
        where = "under this key" if everything else "that this server opened"
        browser.log.add(f"Closed {closed} leftover {self.service.label} session(s) {where}.")
        return closed

    async def unload(self, key: str) -> None:
        """The tab was closed: close its session and forget the browser."""
        browser = self._browsers.pop(key, None)
        if browser is not None:
            await self.sessions.close_owner(key, "the page was closed")

    def may_stream(self, key: str) -> bool:
        """Whether this browser's session was started: only then may it connect its streams."""
        browser = self._browsers.get(key)
        session = self.sessions.get(browser.session_id) if browser is not None else None
        return session is not None and session.state in (SessionState.CONNECTING, SessionState.LIVE)

    def stats(self, key: str) -> StatsReport:
        """This browser's own session's stream stats (none without one) and the process's load.
        Read-only: asking creates no browser."""
        browser = self._browsers.get(key)
        session = self.sessions.get(browser.session_id) if browser is not None else None
        own = session.stream_stats() if session is not None and session.state is not SessionState.CLOSED else None
        return StatsReport(own, ProcessStats(self._cpu.share(), self._cores, len(self.sessions)))

    def status(self, key: str) -> tuple[int, str]:
        browser = self.browser(key)
        return browser.log.version, browser.log.text()


@dataclass
class VoiceOfBrowser:
    """A listener's host: what one browser's voice does to its session, through the controller."""

    controller: Controller
    key: str
    session: AvatarSession

    def note(self, line: str) -> None:
        self.session.log.add(line)

    def avatar_busy_s(self) -> float | None:
        return self.session.avatar_busy_s()

    async def barge_in(self) -> None:
        await self.controller.barge_in(self.key, self.session)

    async def heard(self, text: str, seconds: float) -> None:
        await self.controller.said(self.key, self.session, text)
