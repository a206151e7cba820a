"""Debian's headless Chromium driven by Playwright: the launch arguments, and the page
helpers the browser tests share. Importing this skips the calling test module when
Chromium is missing (and fails under CI, which must install it)."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--autoplay-policy=no-user-gesture-required"]

if not os.path.exists(CHROMIUM):
    if os.environ.get("CI"):
        raise RuntimeError("CI needs Debian's chromium for the browser tests: apt-get install -y chromium")
    pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)", allow_module_level=True)

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402, F401 - expect: for the tests

from tests.support.log_lines import holds, session_created  # noqa: E402


def launched(extra_args: tuple[str, ...] = ()) -> Iterator[Browser]:
    """Chromium for one test module (the `browser` fixture in conftest.py)."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, *extra_args])
        yield browser
        browser.close()


def fake_microphone(wav: str | None) -> tuple[str, ...]:
    """Arguments for a Chromium whose microphone plays `wav` in a loop, allowed at once;
    with None, one whose page is refused the microphone."""
    if wav is None:
        return ("--use-fake-device-for-media-stream", "--deny-permission-prompts")
    return ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={wav}")


def media_progress(page: Page, selector: str) -> dict:
    return page.eval_on_selector(selector, """el => ({width: el.videoWidth || 0, time: el.currentTime,
        paused: el.paused, ready: el.readyState})""")


def playing(page: Page, selector: str, seconds: float = 1.0) -> tuple[dict, dict]:
    """The element's progress now and once it has played `seconds` more. Fails unless it
    moves on within a second and plays those `seconds` within twice as long, plus a second."""
    first = media_progress(page, selector)
    played = """([selector, t]) => document.querySelector(selector).currentTime >= t"""
    page.wait_for_function(played, arg=[selector, first["time"] + 1e-3], timeout=1_000)
    page.wait_for_function(played, arg=[selector, first["time"] + seconds], timeout=(2 * seconds + 1) * 1000)
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


def status_lines(page: Page) -> list[str]:
    return page.locator("#status textarea").input_value().splitlines()


def status_mark(page: Page) -> int:
    """The status log's length now: `expect_status(..., after=mark)` then sees only later lines."""
    return len(status_lines(page))


def expect_status(page: Page, text: str | re.Pattern[str], timeout: float = 10_000, after: int = 0) -> str:
    """Until a status line from line `after` on holds `text` (a substring, or a pattern
    searched in each line); returns the first such line. Take `after` with status_mark()
    before the action, so a line an earlier action wrote does not count."""
    deadline = time.monotonic() + timeout / 1000
    while True:
        lines = status_lines(page)
        found = [line for line in lines[after:] if holds(line, text)]
        if found:
            return found[0]
        if time.monotonic() > deadline:
            shown = [*lines[:after], f"--- {after} lines before the action, then ---", *lines[after:]]
            raise AssertionError(f"no new status line with {text!r} in {timeout / 1000:.0f} s:\n" + "\n".join(shown))
        time.sleep(0.1)


def click_expecting(page: Page, selector: str, text: str | re.Pattern[str], timeout: float = 10_000) -> str:
    """Click, then wait for a status line with `text` written after the click."""
    mark = status_mark(page)
    page.click(selector)
    return expect_status(page, text, timeout, after=mark)


def new_and_start(page: Page) -> None:
    click_expecting(page, "#new-btn", session_created(), 30_000)
    click_expecting(page, "#start-btn", "Stream connected: video and audio are playing.", 30_000)
