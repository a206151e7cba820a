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

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402


def launched() -> Iterator[Browser]:
    """Chromium for one test module (the `browser` fixture in conftest.py)."""
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
