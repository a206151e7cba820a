"""The page in a real headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

import os
import re
import shutil
import time

import pytest

from app_process import ROOT, AppProcess
from heygen_local_process import API_KEY, LocalHeyGenProcess

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOT = ROOT / "assets" / "screenshot.png"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required"]

if not os.path.exists(CHROMIUM):
    if os.environ.get("CI"):
        raise RuntimeError("CI needs Debian's chromium for the browser tests: apt-get install -y chromium")
    pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)", allow_module_level=True)

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402


@pytest.fixture(scope="module")
def app():
    app = AppProcess().wait_ready()
    yield app
    app.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def media_progress(page: Page, selector: str) -> dict:
    return page.eval_on_selector(selector, """el => ({width: el.videoWidth || 0, time: el.currentTime,
        paused: el.paused, ready: el.readyState})""")


def playing(page: Page, selector: str, seconds: float = 1.0) -> tuple[dict, dict]:
    first = media_progress(page, selector)
    time.sleep(seconds)
    return first, media_progress(page, selector)


def wait_for_corner(page: Page, rgb: tuple[int, int, int], tolerance: int = 25, timeout_ms: int = 20_000) -> None:
    """Until the video's corner pixel is `rgb` (the first keyed frame may wait for numba to compile)."""
    page.wait_for_function("""([r, g, b, tol]) => {
        const v = document.querySelector('#avatar-video video');
        const c = document.createElement('canvas'); c.width = v.videoWidth; c.height = v.videoHeight;
        const ctx = c.getContext('2d'); ctx.drawImage(v, 0, 0);
        const p = ctx.getImageData(4, 4, 1, 1).data;
        return Math.abs(p[0] - r) < tol && Math.abs(p[1] - g) < tol && Math.abs(p[2] - b) < tol; }""",
                           arg=[*rgb, tolerance], timeout=timeout_ms)


def expect_status(page: Page, text: str, timeout: float = 10_000) -> None:
    expect(page.locator("#status textarea")).to_have_value(re.compile(re.escape(text)), timeout=timeout)


def new_and_start(page: Page) -> None:
    page.click("#new-btn")
    expect_status(page, "created", 30_000)
    page.click("#start-btn")
    expect_status(page, "Stream connected", 30_000)


def test_new_start_repeat_background_close(app, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(app.url)
    page.click("#new-btn")
    expect_status(page, "created", 30_000)
    page.click("#start-btn")
    page.wait_for_function("""() => { const v = document.querySelector('#avatar-video video');
        return v && v.videoWidth > 0; }""", timeout=30_000)
    before, after = playing(page, "#avatar-video video")
    assert before["width"] == 640 and after["time"] > before["time"] and not after["paused"]
    before, after = playing(page, "#avatar-audio audio")
    assert after["time"] > before["time"] and not after["paused"]
    expect_status(page, "Stream connected", 10_000)

    page.check("#remove-bg input")
    expect_status(page, "replaced by colour #1e293b", 10_000)
    wait_for_corner(page, (30, 41, 59))

    page.fill("#message textarea", "Hello! I am streamed from the server, and my green screen is gone.")
    page.click("#repeat-btn")
    expect_status(page, "Avatar started speaking", 10_000)
    time.sleep(0.8)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    expect_status(page, "Avatar finished speaking", 20_000)

    page.click("#close-btn")
    expect_status(page, "closed (closed by you)", 10_000)
    page.click("#repeat-btn")  # out of order: a message, nothing else
    expect_status(page, "Click New first", 10_000)

    # a second session in the same tab streams again
    page.click("#new-btn")
    page.wait_for_function("""() => document.querySelector('#status textarea').value
        .split('\\n').slice(-1)[0].includes('Click Start')""", timeout=30_000)
    page.click("#start-btn")
    page.wait_for_function("""() => document.querySelector('#status textarea').value
        .split('\\n').slice(-1)[0].includes('Stream connected')""", timeout=30_000)
    before, after = playing(page, "#avatar-video video")
    assert after["time"] > before["time"] and not after["paused"]
    page.click("#close-btn")
    expect_status(page, "closed (closed by you)", 10_000)
    assert "Traceback" not in app.output()
    page.close()


def test_closing_the_tab_closes_the_session(app, browser):
    page = browser.new_page()
    page.goto(app.url)
    new_and_start(page)
    page.close()
    deadline = time.monotonic() + 20
    while "the page was closed" not in app.output() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "closed: the page was closed" in app.output()


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
    from openai_process import OpenAIServerProcess

    llm = OpenAIServerProcess()
    app = AppProcess({"OPENAI_BASE_URL": llm.base_url, "OPENAI_API_KEY": "test-key"}).wait_ready()
    try:
        llm.script(chunks=["Hi, I am Ava. ", "I answer in short sentences."])
        page = browser.new_page()
        page.goto(app.url)
        new_and_start(page)
        page.fill("#message textarea", "Who are you?")
        page.click("#talk-btn")
        transcript = page.locator("#transcript")
        expect(transcript).to_contain_text("Who are you?", timeout=10_000)
        expect(transcript).to_contain_text("Hi, I am Ava. I answer in short sentences.", timeout=10_000)
        expect_status(page, "The LLM answered", 10_000)
        page.close()
    finally:
        app.stop()
        llm.stop()
