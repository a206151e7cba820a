"""Voice input through the controller, with the real pause detector, the bundled Whisper
model, the offline avatar and the OpenAI-compatible server on loopback: microphone audio
(our voices) goes straight to the session's listener, as the microphone component hands
it over. What is heard becomes Talk (or Repeat with no LLM); speaking over the avatar
stops it, except for a short sound while it has only just begun (its own echo)."""

from __future__ import annotations

import asyncio
import re

import numpy as np
import pytest

from avatar_core.events import ViewerChanged
from avatar_core.session.controller import TalkSettings, VoiceSettings
from avatar_core.talk.llm import LLM
from avatar_core.voice.listener import GRACE_S, Listener
from avatar_core.voice.recognizer import Recognizer
from tests.support.controllers import started_controller
from tests.support.speech_audio import silence, spoken, word_error_rate

ME = "browser"
MIC = "mic-1"
QUESTION = "What is the capital of France?"
LONG_SPEECH = ("This is a long story about a lighthouse keeper who lived alone on a rocky island, far from "
               "the mainland, and who kept a diary of every ship that passed.")
CHUNK = 320  # 20 ms at 16 kHz, as the microphone handler gets it
MICROPHONE_CONNECT_S = 0.5


@pytest.fixture(scope="module")
def recognizer():
    recognizer = Recognizer()
    recognizer.load()
    yield recognizer
    recognizer.close()


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()


def run(body, recognizer: Recognizer, llm_url: str | None = None, max_turn_s: float = 15.0, attach: bool = True):
    async def main():
        llm = LLM("test-key", llm_url, "stub-model", 10.0, max_tokens=200) if llm_url else None
        c = started_controller(talk=TalkSettings(llm, "Be brief.", 5),
                               voice=VoiceSettings(recognizer, pause_ms=500, max_turn_s=max_turn_s,
                                                   microphone_connect_s=MICROPHONE_CONNECT_S))
        await c.new_session(ME, "ava", "heart", "low")
        await c.start(ME)
        session = c.sessions.get(c.browser(ME).session_id)
        session.events.emit(ViewerChanged("video", attached=True))
        session.events.emit(ViewerChanged("audio", attached=True))
        await until(lambda: c.may_stream(ME) and session.state == "live")
        listener = c.listener(ME)
        if attach:
            listener.attach(MIC)
        try:
            return await body(c, session, listener)
        finally:
            await c.sessions.close_all("test over")
            if llm:
                await llm.aclose()

    return asyncio.run(main())


async def until(predicate, timeout: float = 15.0) -> bool:
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return predicate()


async def speak(listener: Listener, audio: np.ndarray, real_time: bool = False) -> None:
    """Hand `audio` to the listener in microphone-sized pieces (as fast as it takes them, or in real time)."""
    for start in range(0, audio.size, CHUNK):
        assert await listener.hear(MIC, audio[start : start + CHUNK])
        if real_time:
            await asyncio.sleep(CHUNK / 16_000)


def turn(text: str, voice: str = "heart") -> np.ndarray:
    return np.concatenate([silence(0.3), spoken(text, voice), silence(0.8)])


def speaking_for(session) -> float:
    """How long the avatar has been speaking (0 while quiet or only waiting for the LLM)."""
    busy = session.avatar_busy_s()
    return busy if busy is not None and busy != float("inf") else 0.0


def log_of(c) -> str:
    return c.status(ME)[1]


def test_without_an_llm_the_avatar_says_back_what_it_heard(recognizer):
    async def body(c, session, listener):
        assert "Microphone on: listening" in log_of(c)
        await speak(listener, turn(QUESTION))
        assert await until(lambda: "Heard:" in log_of(c))
        line = next(x for x in log_of(c).splitlines() if "Heard:" in x)
        assert line.endswith(" (no LLM is set up, so the avatar says it back)")
        assert words(line.split("Heard:")[1].split("(")[0]) == words(QUESTION)
        assert await until(lambda: session.avatar.busy)  # saying it
        _, transcript = c.transcript(ME)
        assert [m["role"] for m in transcript] == ["user", "assistant"]
        assert words(transcript[0]["content"]) == words(QUESTION) == words(transcript[1]["content"])

    run(body, recognizer)


def test_what_is_heard_is_asked_of_the_llm_and_the_answer_spoken(recognizer, llm_server):
    llm_server.script(chunks=["Paris is the capital of France."])

    async def body(c, session, listener):
        asked = len(llm_server.state()["requests"])
        await speak(listener, turn(QUESTION, "espeak-us-male"))
        assert await until(lambda: len(llm_server.state()["requests"]) == asked + 1)
        question = llm_server.state()["requests"][-1]["messages"][-1]
        # espeak's robot voice costs Whisper a word now and then ("of" -> "on")
        assert question["role"] == "user" and word_error_rate(QUESTION, question["content"]) <= 0.2
        assert await until(lambda: session.avatar.busy)
        assert await until(lambda: c.transcript(ME)[1][-1]["content"] == "Paris is the capital of France.")
        assert c.transcript(ME)[1][0]["content"] == question["content"]  # the words as recognised

    run(body, recognizer, llm_server.base_url)


@pytest.mark.parametrize("name", ["silence", "noise"])
def test_silence_and_noise_make_no_turn_and_no_llm_call(recognizer, llm_server, name):
    rng = np.random.default_rng(3)
    audio = silence(3.0) if name == "silence" else (0.1 * rng.standard_normal(48_000)).astype(np.float32)

    async def body(c, session, listener):
        asked = len(llm_server.state()["requests"])
        await speak(listener, audio)
        await asyncio.sleep(1.0)  # a turn would be recognised by now
        assert len(llm_server.state()["requests"]) == asked
        assert "Heard" not in log_of(c) and c.transcript(ME)[1] == []

    run(body, recognizer, llm_server.base_url)


def test_speaking_over_the_answer_stops_it_and_the_request_and_is_the_next_question(recognizer, llm_server):
    llm_server.script(chunks=[LONG_SPEECH + " And", " then"], hold_after=1)  # speaks ~9 s, request held open

    async def body(c, session, listener):
        hung_up = llm_server.state()["hung_up"]
        await speak(listener, turn("Tell me a story."))
        assert await until(lambda: speaking_for(session) > GRACE_S + 0.5)  # speaking the story, not just asking
        llm_server.script(chunks=["Sure, stopping."])
        await speak(listener, turn("Wait, stop please."), real_time=True)
        assert "You started speaking: the avatar stopped to listen." in log_of(c)
        assert await until(lambda: llm_server.state()["hung_up"] == hung_up + 1)  # the request was closed
        assert await until(lambda: llm_server.state()["requests"][-1]["messages"][-1]["content"] != "Tell me a story.")
        assert words(llm_server.state()["requests"][-1]["messages"][-1]["content"]) == ["wait", "stop", "please"]
        story = c.transcript(ME)[1][1]["content"]
        assert story.endswith("(interrupted)")

    run(body, recognizer, llm_server.base_url)


@pytest.mark.parametrize(("when", "what", "interrupts"), [
    ("as it starts", "Yes.", False),  # 0.26 s of clear speech: could be its own echo
    ("as it starts", "Wait, stop please.", True),  # 0.86 s: clearly someone speaking
    ("after the grace window", "Yes.", True),
])
def test_a_short_sound_as_the_avatar_starts_speaking_does_not_interrupt_it(recognizer, when, what, interrupts):
    async def body(c, session, listener):
        await c.repeat(ME, LONG_SPEECH)
        assert await until(lambda: speaking_for(session) > 0)
        if when != "as it starts":
            await asyncio.sleep(GRACE_S + 0.4)
        await speak(listener, turn(what))
        assert await until(lambda: "Heard" in log_of(c), timeout=5)
        assert ("You started speaking" in log_of(c)) is interrupts
        if not interrupts:
            assert "Heard sound while the avatar was speaking, not clearly speech: the avatar went on." in log_of(c)
            assert session.avatar.busy and c.transcript(ME)[1] == []
        else:
            assert await until(lambda: c.transcript(ME)[1] != [])  # and what was said is the next turn

    run(body, recognizer)


def test_a_turn_longer_than_the_limit_is_cut_and_recognised(recognizer):
    async def body(c, session, listener):
        await speak(listener, turn(LONG_SPEECH))
        assert await until(lambda: "Heard:" in log_of(c))
        assert "You spoke for 3 s without a pause" in log_of(c)
        first = c.transcript(ME)[1][0]["content"]
        assert words(first)[:4] == ["this", "is", "a", "long"] and len(words(first)) < len(words(LONG_SPEECH))

    run(body, recognizer, max_turn_s=3.0)


def test_a_new_microphone_replaces_the_old_and_closing_the_session_hangs_it_up(recognizer):
    async def body(c, session, listener):
        hung_up = []
        listener.attach("mic-2", hang_up=lambda: hung_up.append("mic-2"))
        assert not await listener.hear(MIC, silence(0.1))  # the old connection is told to end
        assert await listener.hear("mic-2", silence(0.1))
        listener.detach("mic-2")
        assert "Microphone off: not listening." in log_of(c)
        listener.attach("mic-3", hang_up=lambda: hung_up.append("mic-3"))
        listener.attach("mic-4", hang_up=lambda: hung_up.append("mic-4"))
        assert hung_up == ["mic-3"]  # replaced: its connection ends even if it never sends again
        await c.close(ME)
        assert hung_up == ["mic-3", "mic-4"]  # a silent microphone does not outlive its session
        assert not await listener.hear("mic-4", silence(0.1))
        assert c.listener(ME) is None  # no listener for a closed session

    run(body, recognizer)


def test_a_microphone_switched_on_whose_audio_never_comes_gets_a_line(recognizer):
    async def body(c, session, listener):
        c.microphone_on(ME)
        assert "Connecting your microphone" in log_of(c)
        assert await until(lambda: "The microphone did not connect within" in log_of(c), 3)
        c.microphone_on(ME)  # on again, and this time it connects (and is switched off) in time: no line
        listener.attach(MIC)
        listener.detach(MIC)
        await asyncio.sleep(2 * MICROPHONE_CONNECT_S)
        assert log_of(c).count("The microphone did not connect within") == 1

    run(body, recognizer, attach=False)


def test_the_microphone_before_start_says_what_to_do(recognizer):
    async def main():
        c = started_controller(voice=VoiceSettings(recognizer, pause_ms=500, max_turn_s=15))
        try:
            await c.new_session(ME, "ava", "heart", "low")
            c.microphone_on(ME)
            assert "The microphone works once the stream is started: click New, then Start" in log_of(c)
            assert c.listener(ME) is None
        finally:
            await c.sessions.close_all("test over")

    asyncio.run(main())
