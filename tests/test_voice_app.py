"""Voice input end to end on loopback: the app in its own process, a headless viewer, and an
aiortc microphone sending our offline voice through the page's microphone component (Opus,
real time). What is said reaches the LLM stand-in as words, and the viewer hears the
answer; speaking over the answer silences the avatar at the viewer and closes the LLM
request; a microphone is only accepted for a started session, and ends with it."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from tests.support.speech_audio import silence, spoken, word_error_rate
from tests.support.webrtc_viewer import SPEECH_RMS, Viewer
from tests.test_stream_integration import audio_quiet_for, connections_ended, wait_until

pytestmark = pytest.mark.integration

QUESTION = "What is the capital of France?"
STORY = ("Once upon a time a lighthouse keeper lived alone on a rocky island far from the mainland. "
         "Every night he lit the great lamp and wrote down the name of every ship that passed.")


async def started(viewer: Viewer) -> None:
    await viewer.acall("new_session", "ava", "heart", "low")
    await viewer.start()


def heard_speech_after(viewer: Viewer, t: float) -> bool:
    return viewer.audio.first_time(lambda rms: rms > SPEECH_RMS, t) is not None


def test_a_spoken_question_reaches_the_llm_and_the_viewer_hears_the_answer(app_with_llm, llm_server):
    llm_server.script(chunks=["Paris is the capital of France."])

    async def body():
        async with Viewer(app_with_llm.url) as viewer:
            await started(viewer)
            mic = await viewer.microphone()
            mark = await viewer.log_mark()
            asked = len(llm_server.state()["requests"])
            said = mic.say(np.concatenate([spoken(QUESTION), silence(1.0)]))
            assert await wait_until(lambda: len(llm_server.state()["requests"]) == asked + 1, 15)
            question = llm_server.state()["requests"][-1]["messages"][-1]["content"]
            assert word_error_rate(QUESTION, question) == 0, question  # Opus costs the heart voice no word
            assert said.started_at is not None
            assert await wait_until(lambda: heard_speech_after(viewer, said.started_at + 1.8), 10)  # the answer
            log = await viewer.wait_for_log("Microphone on: listening.", "Heard: \u201c", after=mark)
            assert question in log
            await viewer.acall("close_session")
            assert await wait_until(lambda: connections_ended(viewer), 10)  # the microphone's too

    asyncio.run(body())


def test_speaking_over_the_answer_silences_the_avatar_and_closes_the_llm_request(app_with_llm, llm_server):
    llm_server.script(chunks=[STORY, " And then"], hold_after=1)  # ~10 s of speech, the request held open

    async def body():
        async with Viewer(app_with_llm.url) as viewer:
            await started(viewer)
            mic = await viewer.microphone()
            hung_up, asked = llm_server.state()["hung_up"], len(llm_server.state()["requests"])
            mic.say(np.concatenate([spoken("Tell me a story."), silence(1.0)]))
            llm = llm_server.state
            assert await wait_until(lambda: len(llm()["requests"]) == asked + 1 and llm()["streaming"] == 1, 15)
            assert await wait_until(lambda: viewer.audio.max_value(viewer.audio.times[-1] - 0.1) > SPEECH_RMS, 10)
            await asyncio.sleep(1.5)  # well into the story
            llm_server.script(chunks=["Yes?"], first_delay_s=4)  # the next answer comes late: the silence shows
            mark = await viewer.log_mark()
            mic.say(np.concatenate([spoken("Wait, stop please."), silence(1.0)]))
            assert await wait_until(lambda: llm()["hung_up"] == hung_up + 1, 10)  # the story's request closed
            assert await wait_until(lambda: audio_quiet_for(viewer.audio, 0.5, SPEECH_RMS), 5)  # ~8 s before its end
            await viewer.wait_for_log("You started speaking: the avatar stopped to listen.", after=mark)
            assert await wait_until(lambda: len(llm()["requests"]) == asked + 2, 10)  # the next question
            assert word_error_rate("Wait, stop please.", llm()["requests"][-1]["messages"][-1]["content"]) == 0

    asyncio.run(body())


def test_a_microphone_needs_a_started_session(app_with_llm):
    async def body():
        async with Viewer(app_with_llm.url) as viewer:
            with pytest.raises(RuntimeError, match="no_started_session"):
                await viewer.microphone()
            await viewer.acall("new_session", "ava", "heart", "low")
            with pytest.raises(RuntimeError, match="no_started_session"):
                await viewer.microphone()  # created, not started
            await viewer.start()
            mic = await viewer.microphone()
            assert mic is not None

    asyncio.run(body())
