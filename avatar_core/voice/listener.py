"""A session's ears: microphone audio -> turns (pauses.py) -> words (recognizer.py), and
barge-in when the person starts speaking over the avatar.

One Listener per session, shared by the microphone connections that come and go (one at a
time: a new one replaces the older). What the words lead to (Talk, Repeat) and what
barge-in does (Interrupt) is the host's business (the controller); the listener decides
when a turn is a turn, whether it is speech, and whether it interrupts.

Latency: recognition is started speculatively once a pause in a turn has lasted
`pause_ms - SPECULATE_BEFORE_END_MS`; when the pause goes on to end the turn, its words
are ready (or nearly) the moment the turn ends. When speech resumes instead, the guess is
dropped.

Barge-in: BARGE_IN_SPEECH_S of likely speech while the avatar talks stops it, before the
turn itself is certain (a turn needs 160 ms): people expect it to stop as they start.

Echo: the browser's echo cancellation removes most of the avatar's own voice, but it
needs a moment to adapt when the avatar starts speaking. For GRACE_S after that, sound
interrupts the avatar only once it has been clearly speech for CLEAR_SPEECH_S; a turn that
began while the avatar spoke and did not interrupt it is dropped (it was most likely the
avatar, heard back).

What is heard is acted on one turn at a time, the newest winning: a turn's words arriving
while an earlier one is still being answered end that answer first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..errors import AvatarError
from ..tasks import TaskOwner
from .pauses import SAMPLE_RATE, PauseDetector, Pausing, TurnEnded, TurnStarted
from .recognizer import Heard, Recognizer

log = logging.getLogger(__name__)
BATCH_S = 0.032  # microphone audio handed to the detector at a time (one of its frames: barge-in waits less)
SPECULATE_BEFORE_END_MS = 400  # about what recognition takes in the app under load (300-530 ms)
BARGE_IN_SPEECH_S = 0.096  # likely speech in a row that stops the talking avatar (past the grace)
GRACE_S = 0.6  # after the avatar starts speaking, only clear speech interrupts it...
CLEAR_SPEECH_S = 0.3  # ...this much of it
MAX_TURNS_WAITING = 2  # turns waiting for recognition; an older one is dropped beyond it
MICROPHONE_CONNECT_S = 10.0  # after the microphone is switched on, audio should flow by then


class ListenerHost(Protocol):
    """What the listener needs of its session (the controller provides it)."""

    def note(self, line: str) -> None:
        """A line for the status log."""

    def avatar_busy_s(self) -> float | None:
        """How long the avatar has been speaking without a break (inf while it is answering
        but not yet speaking); None when it is quiet."""

    async def barge_in(self) -> None:
        """The person started speaking over the avatar: stop it (as Interrupt does)."""

    async def heard(self, text: str, seconds: float) -> None:
        """A turn's words: act on them (answer, or repeat)."""


@dataclass
class _Turn:
    """What the listener knows of the turn in progress."""

    over_the_avatar: bool  # it began while the avatar was speaking
    waiting_for_clear_speech: bool  # it began in the grace window: interrupt once it is clearly speech
    interrupted: bool = False


@dataclass(frozen=True)
class _Ended:
    audio: np.ndarray
    guess: asyncio.Task[Heard | None] | None  # recognition begun during the pause that ended the turn
    ended_at: float


class Listener:
    def __init__(self, host: ListenerHost, recognizer: Recognizer, pause_ms: int, max_turn_s: float,
                 microphone_connect_s: float = MICROPHONE_CONNECT_S) -> None:
        self._host = host
        self._microphone_connect_s = microphone_connect_s
        self._recognizer = recognizer
        self._pause_ms, self._max_turn_s = pause_ms, max_turn_s
        self._tasks = TaskOwner("listener")
        self._microphone: str | None = None  # the connection heard now
        self._hang_up: Callable[[], None] | None = None  # ends that connection
        self._detector = self._new_detector()
        self._pending: list[np.ndarray] = []  # microphone audio not yet given to the detector
        self._pending_samples = 0
        self._turn: _Turn | None = None
        self._guess: asyncio.Task[Heard | None] | None = None
        self._guessed_samples = 0  # of the turn's audio the guess was made on
        self._ended: deque[_Ended] = deque()
        self._recognising: asyncio.Task[None] | None = None
        self._acting: asyncio.Task[None] | None = None  # the newest turn's words being acted on
        self._barged = False  # the avatar was stopped by speech that has not become a turn yet
        self._connect_timer: asyncio.Task[None] | None = None
        self.closed = False

    def _new_detector(self) -> PauseDetector:
        return PauseDetector(self._pause_ms, self._max_turn_s,
                             speculate_ms=max(self._pause_ms - SPECULATE_BEFORE_END_MS, 100))

    # --- microphone connections -------------------------------------------------------------
    def expect_microphone(self) -> None:
        """The page switched the microphone on: say so if its audio never comes (a connection
        that fails; a refused microphone is reported by the page itself)."""
        if self._microphone is None and not self.closed:
            self._cancel(self._connect_timer)
            self._connect_timer = self._tasks.spawn(self._microphone_did_not_connect(), "microphone-connect")

    def microphone_switched_off(self) -> None:
        self._cancel(self._connect_timer)

    async def _microphone_did_not_connect(self) -> None:
        await asyncio.sleep(self._microphone_connect_s)
        if self._microphone is None:
            self._host.note(f"The microphone did not connect within {self._microphone_connect_s:.0f} s (its audio "
                            "never arrived). Stop it and click it again; if that fails too, the network between "
                            "your browser and this server blocks it (see the README's TURN settings).")

    def attach(self, microphone: str, hang_up: Callable[[], None] | None = None) -> None:
        """A microphone connection's audio starts arriving; it replaces any other (which is
        hung up). `hang_up` ends this one (when the session closes, or another replaces it)."""
        if self.closed or microphone == self._microphone:
            return
        self._cancel(self._connect_timer)
        self._forget_turn()
        if self._hang_up is not None:
            self._hang_up()
        self._microphone, self._hang_up = microphone, hang_up
        self._host.note("Microphone on: listening. Speak, then pause; the avatar answers. Speaking while it "
                        "talks interrupts it.")

    def detach(self, microphone: str) -> None:
        """That connection ended (switched off, page closed, network)."""
        if microphone != self._microphone:
            return
        self._microphone, self._hang_up = None, None
        self._forget_turn()
        if not self.closed:
            self._host.note("Microphone off: not listening.")

    def _forget_turn(self) -> None:
        """Whatever was half heard is dropped; the next audio starts afresh."""
        self._detector = self._new_detector()  # a new one: a feed may still be running on the old
        self._pending, self._pending_samples, self._turn, self._barged = [], 0, None, False
        self._drop_guess()

    # --- audio ------------------------------------------------------------------------------
    async def hear(self, microphone: str, audio: np.ndarray) -> bool:
        """16 kHz mono float audio from `microphone`; False when it is not (or no longer)
        the one listened to, so its connection can end."""
        if self.closed or microphone != self._microphone:
            return False
        self._pending.append(audio)
        self._pending_samples += audio.size
        if self._pending_samples < BATCH_S * SAMPLE_RATE:
            return True
        batch = np.concatenate(self._pending)
        self._pending, self._pending_samples = [], 0
        detector = self._detector
        events = await asyncio.to_thread(detector.feed, batch)  # ~0.5 ms of model per batch, off the loop
        if detector is not self._detector or self.closed:
            return not self.closed  # reset meanwhile (a new microphone): these events are stale
        for event in events:
            match event:
                case TurnStarted():
                    self._turn_started()
                case Pausing(audio=so_far):
                    self._guess_words(so_far)
                case TurnEnded(audio=turn_audio, cut=cut):
                    self._turn_ended(turn_audio, cut)
        self._barge_in_if_due(detector)
        return True

    def _barge_in_if_due(self, detector: PauseDetector) -> None:
        """Speech over the talking avatar stops it: as soon as it is likely speech (past the
        grace window), or clearly speech (in it)."""
        turn = self._turn
        if turn is None:
            if not detector.speech_run_s:
                self._barged = False  # a blip that never became a turn
            elif not self._barged and detector.speech_run_s >= BARGE_IN_SPEECH_S:
                busy_s = self._host.avatar_busy_s()
                if busy_s is not None and busy_s >= GRACE_S:
                    self._barged = True
                    self._tasks.spawn(self._host.barge_in(), "barge-in")
            return
        if not turn.over_the_avatar and self._host.avatar_busy_s() is not None:
            turn.over_the_avatar = turn.waiting_for_clear_speech = True  # it began answering meanwhile
        if turn.waiting_for_clear_speech and detector.clear_speech_s >= CLEAR_SPEECH_S:
            self._interrupt_the_avatar(turn)

    def _turn_started(self) -> None:
        self._drop_guess()
        if self._barged:  # already stopped by this very speech
            self._turn, self._barged = _Turn(over_the_avatar=True, waiting_for_clear_speech=False,
                                             interrupted=True), False
            return
        busy_s = self._host.avatar_busy_s()
        self._turn = _Turn(over_the_avatar=busy_s is not None,
                           waiting_for_clear_speech=busy_s is not None and busy_s < GRACE_S)
        if busy_s is not None and busy_s >= GRACE_S:
            self._interrupt_the_avatar(self._turn)

    def _interrupt_the_avatar(self, turn: _Turn) -> None:
        turn.interrupted, turn.waiting_for_clear_speech = True, False
        self._tasks.spawn(self._host.barge_in(), "barge-in")

    def _guess_words(self, so_far: np.ndarray) -> None:
        self._drop_guess()
        if self._turn is not None and self._turn.over_the_avatar and not self._turn.interrupted:
            return  # likely dropped at its end: no guess
        if not self._recognizer.idle:
            return  # a guess must never make anyone's real turn wait
        self._guess = self._tasks.spawn(self._guessed(so_far), "guess")
        self._guessed_samples = so_far.size

    async def _guessed(self, so_far: np.ndarray) -> Heard | None:
        try:
            return await self._recognizer.transcribe(so_far)
        except Exception:
            return None  # the turn's end tries again, and reports what fails

    def _drop_guess(self) -> None:
        self._cancel(self._guess)  # still queued: it never runs; running: its result is dropped
        self._guess = None

    def _turn_ended(self, audio: np.ndarray, cut: bool) -> None:
        turn, self._turn = self._turn, None
        guess, self._guess = self._guess, None
        if cut or audio.size - self._guessed_samples != self._detector.samples_after_pausing:
            self._cancel(guess)  # not guessed on this very pause: its audio is short of words
            guess = None
        if turn is not None and turn.over_the_avatar and not turn.interrupted:
            self._cancel(guess)
            self._host.note("Heard sound while the avatar was speaking, not clearly speech: the avatar went on. "
                            "(Headphones help if it hears itself.)")
            return
        if cut:
            self._host.note(f"You spoke for {self._max_turn_s:.0f} s without a pause: that much is taken as a turn.")
        self._ended.append(_Ended(audio, guess, time.monotonic()))
        while len(self._ended) > MAX_TURNS_WAITING:
            dropped = self._ended.popleft()
            self._cancel(dropped.guess)
            self._host.note("Turns came faster than they could be recognised: an earlier one was dropped.")
        if self._recognising is None or self._recognising.done():
            self._recognising = self._tasks.spawn(self._recognise_turns(), "recognise")

    async def _recognise_turns(self) -> None:
        """Turns in the order they ended, one at a time."""
        while self._ended:
            turn = self._ended.popleft()
            try:
                heard = await self._words(turn)
            except AvatarError as exc:  # busy, or no model
                self._host.note(str(exc))
                continue
            except Exception as exc:
                log.exception("speech recognition failed")
                self._host.note(f"Speech recognition failed ({type(exc).__name__}); say it again.")
                continue
            waited_ms = 1000 * (time.monotonic() - turn.ended_at)
            log.info("voice turn of %.1f s: words %.0f ms after its end (recognition %.0f ms%s)", heard.seconds,
                     waited_ms, 1000 * heard.took_s, ", begun during the pause" if turn.guess else "")
            if not heard.text:
                self._host.note(f"Heard {heard.seconds:.1f} s of sound but no words in it; nothing was sent.")
                continue
            self._acting = self._tasks.spawn(self._act_on(self._acting, heard), "heard")

    async def _act_on(self, earlier: asyncio.Task[None] | None, heard: Heard) -> None:
        await self._tasks.cancel(earlier)  # the newest turn wins: an earlier one's answer ends first
        await self._host.heard(heard.text, heard.seconds)

    async def _words(self, turn: _Ended) -> Heard:
        if turn.guess is not None:
            try:
                if (heard := await turn.guess) is not None:
                    return heard
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # this task itself is cancelled, not just the guess
        return await self._recognizer.transcribe(turn.audio)

    @staticmethod
    def _cancel(task: asyncio.Task | None) -> None:
        if task is not None and not task.done():
            task.cancel()

    async def close(self) -> None:
        """Idempotent: nothing more is heard; what was being recognised or said is cancelled."""
        self.closed = True
        if self._hang_up is not None:  # a silent microphone would otherwise outlive its session
            self._hang_up()
        self._microphone, self._hang_up = None, None
        self._ended.clear()
        await self._tasks.cancel_all()
