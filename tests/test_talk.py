"""Talk against an OpenAI-compatible server on loopback that streams real
server-sent events: speech starts before the reply ends (an ordering, not a time),
history goes with the next turn, Interrupt stops speech and the request, and each
failure is one clear line that leaves the session usable."""

from __future__ import annotations

import asyncio
import json

import pytest

from avatar_core.errors import UserError
from avatar_core.events import ViewerChanged
from avatar_core.session.controller import TalkSettings
from avatar_core.talk.conversation import MAX_ANSWER_CHARS
from avatar_core.talk.llm import LLM, NOT_CONFIGURED, LLMError
from tests.support.app_process import free_port
from tests.support.controllers import started_controller

ME = "browser"
FIRST = "Hello there! "
REST = [" is the second sentence, with Dr. Smith and 3.5 cups. ", "And a third one."]


def run(body, base_url: str | None, timeout_s: float = 10.0, with_llm: bool = True):
    async def main():
        llm = LLM("test-key", base_url, "stub-model", timeout_s, max_tokens=123) if with_llm else None
        c = started_controller(talk=TalkSettings(llm, "Be brief.", 5))
        await c.new_session(ME, "ava", "heart", "low")
        await c.start(ME)
        session = c.sessions.get(c.browser(ME).session_id)
        session.events.emit(ViewerChanged("video", attached=True))
        session.events.emit(ViewerChanged("audio", attached=True))
        try:
            return await body(c, session)
        finally:
            await c.sessions.close_all("test over")
            if llm:
                await llm.aclose()

    return asyncio.run(main())


async def until(predicate, timeout: float = 10.0) -> bool:
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return predicate()


def test_the_first_sentence_is_spoken_before_the_reply_ends(llm_server):
    llm_server.script(chunks=[FIRST, "This", *REST], hold_after=2)  # holds after "This"

    async def body(c, session):
        talk = asyncio.ensure_future(c.talk(ME, "Who are you?"))
        assert await until(lambda: session.avatar.busy)  # speaking the first sentence...
        assert llm_server.state()["streaming"] == 1  # ...while the reply is still held open
        assert c.transcript(ME)[1][-1]["content"] == "Hello there!"
        llm_server.release()
        reply = await talk
        assert reply == "Hello there! This is the second sentence, with Dr. Smith and 3.5 cups. And a third one."
        _, transcript = c.transcript(ME)
        assert transcript == [{"role": "user", "content": "Who are you?"}, {"role": "assistant", "content": reply}]

    run(body, llm_server.base_url)


def test_history_goes_with_the_next_turn(llm_server):
    async def body(c, session):
        llm_server.script(chunks=["I am Ava. ", "Nice to meet you."])
        await c.talk(ME, "What is your name?")
        llm_server.script(chunks=["You asked my name."])
        await c.talk(ME, "What did I ask?")
        sent = llm_server.state()["requests"][-1]["messages"]
        assert sent == [{"role": "system", "content": "Be brief."},
                        {"role": "user", "content": "What is your name?"},
                        {"role": "assistant", "content": "I am Ava. Nice to meet you."},
                        {"role": "user", "content": "What did I ask?"}]

    run(body, llm_server.base_url)


def test_interrupt_stops_speech_and_the_request_and_the_next_talk_works(llm_server):
    llm_server.script(chunks=[FIRST, "This", *REST], hold_after=2)

    async def body(c, session):
        hung_up = llm_server.state()["hung_up"]
        talk = asyncio.ensure_future(c.talk(ME, "Tell me a long story."))
        assert await until(lambda: session.avatar.busy)
        await c.interrupt(ME)
        assert await talk == ""  # the Talk call ends quietly: it was interrupted, not failed
        assert not session.avatar.busy  # queued speech dropped at once
        assert await until(lambda: llm_server.state()["hung_up"] == hung_up + 1)  # the request was cancelled
        assert c.transcript(ME)[1][-1]["content"].endswith("(interrupted)")
        llm_server.script(chunks=["Here I am again."])
        assert await c.talk(ME, "Still there?") == "Here I am again."
        assert "interrupted" in c.status(ME)[1]

    run(body, llm_server.base_url)


@pytest.mark.parametrize(("error", "message"), [
    (401, "refused the key"), (429, "rate-limiting"), (500, "returned an error \\(HTTP 500\\)"),
    ("empty", "empty reply"), ("hang", "did not answer in time"), ("midstream", "reported an error while answering"),
    ("malformed", "cannot read"),
])
def test_llm_failures_are_one_line_and_the_session_stays_usable(llm_server, error, message):
    llm_server.script(error=error)

    async def body(c, session):
        with pytest.raises(LLMError, match=message) as raised:
            await c.talk(ME, "Hello?")
        assert "\n" not in str(raised.value) and "test-key" not in str(raised.value)
        llm_server.script(chunks=["Working again."])
        assert await c.talk(ME, "Hello again?") == "Working again."
        await c.repeat(ME, "And Repeat works too.")

    run(body, llm_server.base_url, timeout_s=1.0 if error == "hang" else 10.0)


def test_an_unreachable_llm_server():
    async def body(c, session):
        with pytest.raises(LLMError, match=r"Cannot reach the LLM server at http://127\.0\.0\.1"):
            await c.talk(ME, "Hello?")
        await c.repeat(ME, "Repeat still works.")

    run(body, f"http://127.0.0.1:{free_port()}/v1", timeout_s=2.0)


def test_no_llm_configured_says_how_and_repeat_works():
    async def body(c, session):
        with pytest.raises(UserError) as raised:
            await c.talk(ME, "Hello?")
        assert str(raised.value) == NOT_CONFIGURED and "OPENAI_API_KEY" in NOT_CONFIGURED
        await c.repeat(ME, "Repeat works without an LLM.")

    run(body, None, with_llm=False)


def test_a_second_talk_while_answering_is_refused(llm_server):
    llm_server.script(chunks=[FIRST, "This", *REST], hold_after=2)

    async def body(c, session):
        first = asyncio.ensure_future(c.talk(ME, "One"))
        assert await until(lambda: session.answering and session.avatar.busy)
        with pytest.raises(UserError, match="still answering"):
            await c.talk(ME, "Two")
        llm_server.release()
        await first

    run(body, llm_server.base_url)


def test_heygens_own_answer_lands_in_the_transcript_and_history():
    from avatar_core.talk.conversation import Conversation

    conversation = Conversation("Be brief.", 5)
    conversation.asked_elsewhere("What are you?")
    conversation.answered_elsewhere("A demo avatar.")
    assert conversation.transcript == [{"role": "user", "content": "What are you?"},
                                       {"role": "assistant", "content": "A demo avatar."}]
    assert conversation.history == conversation.transcript  # a proper question/answer pair


def test_history_and_transcript_stay_bounded():
    from avatar_core.talk.conversation import MAX_TRANSCRIPT, Conversation

    conversation = Conversation("Be brief.", 2)
    for i in range(MAX_TRANSCRIPT):
        conversation.asked_elsewhere(f"question {i}")
        conversation.answered_elsewhere(f"answer {i}")
    assert len(conversation.transcript) == MAX_TRANSCRIPT and len(conversation.history) == 4
    assert conversation.history[-1]["content"] == f"answer {MAX_TRANSCRIPT - 1}"


def test_lone_surrogates_from_the_page_and_from_the_llm_become_valid_text(llm_server):
    """A lone surrogate cannot be encoded: kept, it would break every later JSON reply
    (the transcript poll answered HTTP 500 for the rest of the session)."""

    async def body(c, session):
        llm_server.script(chunks=["Half \ud800 a character."])
        said = await c.talk(ME, "hi \udc00 there")
        assert llm_server.state()["requests"][-1]["messages"][-1] == {"role": "user", "content": "hi \ufffd there"}
        assert said == "Half \ufffd a character."
        _, messages = c.transcript(ME)
        json.dumps(messages, ensure_ascii=False).encode("utf-8")  # what every poll does: it must not fail
        assert [m["content"] for m in messages] == ["hi \ufffd there", "Half \ufffd a character."]

    run(body, llm_server.base_url)


def test_an_endless_answer_is_bounded_in_tokens_asked_and_characters_spoken(llm_server):
    async def body(c, session):
        llm_server.script(chunks=["and on " * 40] * 60)  # 16800 characters, no sentence end
        said = await c.talk(ME, "Talk forever?")
        assert llm_server.state()["requests"][-1]["max_tokens"] == 123  # LLM_MAX_TOKENS is asked for
        assert 2500 < len(said) <= MAX_ANSWER_CHARS  # read up to the cap, and said
        assert c.transcript(ME)[1][-1]["content"] == said

    run(body, llm_server.base_url)
