"""The page in a real headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

import re
import time

import pytest

from tests.support.app_process import ROOT, AppProcess
from tests.support.chromium import (
    click_expecting,
    expect,
    expect_status,
    new_and_start,
    playing,
    status_mark,
    wait_for_corner,
)
from tests.support.heygen_local_process import API_KEY, LocalHeyGenProcess
from tests.support.log_lines import server_closed, session_closed, session_created

pytestmark = [pytest.mark.integration, pytest.mark.browser]
SCREENSHOT = ROOT / "assets" / "screenshot.png"


@pytest.fixture(scope="module")
def app():
    app = AppProcess().wait_ready()
    yield app
    app.stop()


def test_new_start_repeat_background_close(app, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(app.url)
    click_expecting(page, "#new-btn", session_created(), 30_000)
    mark = status_mark(page)
    page.click("#start-btn")
    page.wait_for_function("""() => { const v = document.querySelector('#avatar-video video');
        return v && v.videoWidth > 0; }""", timeout=30_000)
    before, after = playing(page, "#avatar-video video")
    assert before["width"] == 640 and after["time"] > before["time"] and not after["paused"]
    before, after = playing(page, "#avatar-audio audio")
    assert after["time"] > before["time"] and not after["paused"]
    expect_status(page, "Stream connected: video and audio are playing.", 10_000, after=mark)

    mark = status_mark(page)
    page.check("#remove-bg input")
    expect_status(page, "replaced by colour #1e293b", 10_000, after=mark)
    wait_for_corner(page, (30, 41, 59))

    page.fill("#message textarea", "Hello! I am streamed from the server, and my green screen is gone.")
    click_expecting(page, "#repeat-btn", "Avatar started speaking.", 10_000)
    time.sleep(0.8)  # mid-sentence for the README's screenshot (not a measurement)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    expect_status(page, "Avatar finished speaking.", 20_000, after=mark)

    click_expecting(page, "#close-btn", session_closed("closed by you"), 10_000)
    # out of order: a message, nothing else
    click_expecting(page, "#repeat-btn", "Error: There is no open session to speak in. Click New first.", 10_000)

    # a second session in the same tab streams again; its lines are new ones, not the first session's
    click_expecting(page, "#new-btn", session_created(), 30_000)
    click_expecting(page, "#start-btn", "Stream connected: video and audio are playing.", 30_000)
    before, after = playing(page, "#avatar-video video")
    assert after["time"] > before["time"] and not after["paused"]
    click_expecting(page, "#close-btn", session_closed("closed by you"), 10_000)
    assert "Traceback" not in app.output()
    page.close()


def test_closing_the_tab_closes_the_session(app, browser):
    page = browser.new_page()
    page.goto(app.url)
    new_and_start(page)
    closed = server_closed("the page was closed")
    before = len(app.lines(closed))  # the same app served the tests before: only a new line counts
    page.close()
    assert app.wait_for_output(closed, 20, after=before), app.output()[-3000:]


def test_closing_the_tab_stops_the_upstream_heygen_session(browser):
    server = LocalHeyGenProcess()
    app = AppProcess({"AVATAR_PROVIDER": "heygen", "HEYGEN_API_KEY": API_KEY,
                      "HEYGEN_BASE_URL": server.url}).wait_ready()
    try:
        page = browser.new_page()
        page.goto(app.url)
        expect(page.locator("#leaked-btn")).to_be_visible()
        # the Avatar ID list comes from HeyGen's avatar.list (the stand-in marks its names)
        expect(page.get_by_label("Avatar ID")).to_have_value(re.compile(r"\(stand-in\)"), timeout=10_000)
        new_and_start(page)
        assert server.open_sessions() == 1
        page.close()
        deadline = time.monotonic() + 20
        while server.open_sessions() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert server.open_sessions() == 0
        assert API_KEY not in app.output()
    finally:
        app.stop()
        server.stop()


def test_talk_fills_the_transcript(browser):
    from tests.support.openai_process import OpenAIServerProcess

    llm = OpenAIServerProcess()
    app = AppProcess({"OPENAI_BASE_URL": llm.base_url, "OPENAI_API_KEY": "test-key"}).wait_ready()
    try:
        llm.script(chunks=["Hi, I am Ava. ", "I answer in short sentences."])
        page = browser.new_page()
        page.goto(app.url)
        new_and_start(page)
        page.fill("#message textarea", "Who are you?")
        mark = status_mark(page)
        page.click("#talk-btn")
        transcript = page.locator("#transcript")
        expect(transcript).to_contain_text("Who are you?", timeout=10_000)
        expect(transcript).to_contain_text("Hi, I am Ava. I answer in short sentences.", timeout=10_000)
        expect_status(page, "The LLM answered", 10_000, after=mark)
        page.close()
    finally:
        app.stop()
        llm.stop()


def test_liveavatar_in_the_page_new_start_repeat_talk_interrupt_close(browser):
    """AVATAR_PROVIDER=liveavatar (FULL) against its stand-in: the lists come from LiveAvatar,
    the relayed avatar plays, Repeat and both LLMs speak, Interrupt, Close, and a closed tab
    stops the upstream session."""
    from tests.support.liveavatar_local_process import API_KEY as LIVEAVATAR_KEY
    from tests.support.liveavatar_local_process import LocalLiveAvatarProcess
    from tests.support.openai_process import OpenAIServerProcess

    standin, llm = LocalLiveAvatarProcess(), OpenAIServerProcess()
    app = AppProcess({"AVATAR_PROVIDER": "liveavatar", "LIVEAVATAR_API_KEY": LIVEAVATAR_KEY,
                      "LIVEAVATAR_BASE_URL": standin.url, "OPENAI_BASE_URL": llm.base_url,
                      "OPENAI_API_KEY": "test-key"}).wait_ready()
    try:
        page = browser.new_page()
        page.goto(app.url)
        expect(page.locator("#leaked-btn")).to_have_text("Close my open LiveAvatar sessions")
        expect(page.get_by_label("Avatar ID")).to_have_value(re.compile(r"\(stand-in\)"), timeout=10_000)
        new_and_start(page)
        assert standin.open_sessions() == 1
        before, after = playing(page, "#avatar-video video")
        assert before["width"] == 640 and after["time"] > before["time"]
        playing(page, "#avatar-audio audio")

        page.fill("#message textarea", "Hello from the LiveAvatar stand-in.")
        mark = status_mark(page)
        page.click("#repeat-btn")
        expect_status(page, "LiveAvatar says: Hello from the LiveAvatar stand-in.", 15_000, after=mark)
        expect_status(page, "Avatar finished speaking.", 20_000, after=mark)

        page.get_by_label("LiveAvatar's LLM").check()
        page.fill("#message textarea", "What are you?")
        mark = status_mark(page)
        page.click("#talk-btn")
        expect(page.locator("#transcript")).to_contain_text("This is the local stand-in", timeout=15_000)
        expect_status(page, "Avatar finished speaking.", 20_000, after=mark)

        llm.script(chunks=["Once upon a time there was a very long story that went on and on. ", "And",
                           " on"], hold_after=2)
        page.get_by_label("Our LLM").check()
        page.fill("#message textarea", "Tell me a story.")
        mark = status_mark(page)
        page.click("#talk-btn")
        expect_status(page, "Avatar started speaking.", 15_000, after=mark)
        click_expecting(page, "#interrupt-btn", "Interrupted: the avatar stopped speaking.", 10_000)
        expect_status(page, "Avatar finished speaking.", 10_000, after=mark)

        click_expecting(page, "#close-btn", session_closed("closed by you"), 10_000)
        assert standin.open_sessions() == 0
        new_and_start(page)
        page.close()  # the tab goes: the upstream session is stopped
        deadline = time.monotonic() + 20
        while standin.open_sessions() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert standin.open_sessions() == 0
        assert LIVEAVATAR_KEY not in app.output() and "Traceback" not in app.output()
    finally:
        app.stop()
        standin.stop()
        llm.stop()
