"""Voice input in a real headless Chromium: its fake microphone plays a WAV of our offline
voice asking a question (in a loop, as Chromium does); the page shows the words as
recognised, the LLM stand-in is asked them, and the avatar answers. A page refused the
microphone gets a line saying what to do."""

from __future__ import annotations

import time
import wave

import numpy as np
import pytest

from avatar_core.session.controller import MICROPHONE_HELP
from tests.support.chromium import (
    expect,
    expect_status,
    fake_microphone,
    launched,
    new_and_start,
    status_mark,
)
from tests.support.speech_audio import silence, spoken, word_error_rate

pytestmark = [pytest.mark.integration, pytest.mark.browser]
QUESTION = "What is the capital of France?"
ANSWER = "Paris is the capital of France."
RATE = 48_000


def write_wav(path: str, audio: np.ndarray) -> None:
    with wave.open(path, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes((np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes())


def test_a_question_asked_into_the_microphone_is_answered(app_with_llm, llm_server, tmp_path):
    wav = str(tmp_path / "question.wav")
    # the question, then long enough a silence that the answer is over before Chromium plays it again
    write_wav(wav, np.concatenate([silence(1.0, RATE), spoken(QUESTION, rate=RATE), silence(8.0, RATE)]))
    llm_server.script(chunks=[ANSWER])
    asked = len(llm_server.state()["requests"])
    for browser in launched(fake_microphone(wav)):
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(app_with_llm.url)
        new_and_start(page)
        mark = status_mark(page)
        page.locator("#microphone button", has_text="Click to Access Microphone").click()
        start = page.locator("#microphone button", has_text="Speak to the avatar")
        start.wait_for(timeout=10_000)
        start.click()
        expect_status(page, "Connecting your microphone", 10_000, after=mark)
        expect_status(page, "Microphone on: listening.", 20_000, after=mark)
        heard = expect_status(page, "Heard: \u201c", 30_000, after=mark)
        assert word_error_rate(QUESTION, heard.split("Heard: ")[1]) <= 0.2, heard
        # "Heard" is logged as the words go to the LLM: its request may be a moment behind
        deadline = time.monotonic() + 10
        while len(llm_server.state()["requests"]) <= asked and time.monotonic() < deadline:
            time.sleep(0.1)
        question = llm_server.state()["requests"][asked]["messages"][-1]["content"]
        assert word_error_rate(QUESTION, question) <= 0.2
        transcript = page.locator("#transcript")
        expect(transcript).to_contain_text(question, timeout=10_000)  # the words as recognised
        expect(transcript).to_contain_text(ANSWER, timeout=10_000)
        expect_status(page, "Avatar started speaking.", 10_000, after=mark)
        mark = status_mark(page)
        page.locator("#microphone button", has_text="Stop listening").click()
        expect_status(page, "Microphone off: not listening.", 10_000, after=mark)
        page.close()


def test_a_page_refused_the_microphone_is_told_what_to_do(app_with_llm):
    for browser in launched(fake_microphone(None)):
        page = browser.new_page()
        page.goto(app_with_llm.url)
        new_and_start(page)
        mark = status_mark(page)
        page.locator("#microphone button", has_text="Click to Access Microphone").click()  # refused
        expect_status(page, MICROPHONE_HELP, 10_000, after=mark)
        assert "Microphone on" not in "\n".join(page.locator("#status textarea").input_value().splitlines()[mark:])
        page.close()
