"""The HeyGen v1 local server serves browser clients as HeyGen did: a page of another
origin (the original demo's calls, tests/browser_pages/heygen_v1_demo.html) completes New,
Start, Repeat and Close against it cross-origin in Chromium, media included."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.support.app_process import free_port
from tests.support.heygen_local_process import API_KEY, LocalHeyGenProcess

pytestmark = [pytest.mark.integration, pytest.mark.browser]
PAGES = Path(__file__).parent / "browser_pages"


@pytest.fixture(scope="module")
def heygen():
    server = LocalHeyGenProcess()
    yield server
    server.stop()


class QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def page_origin():
    """The demo page's own origin: another loopback port, so every API call is cross-origin."""
    handler = functools.partial(QuietFiles, directory=str(PAGES))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_the_original_demos_calls_work_cross_origin_against_the_v1_local_server(browser, heygen, page_origin):
    page = browser.new_page()
    failed: list[str] = []
    page.on("console", lambda message: failed.append(message.text) if message.type == "error" else None)
    page.goto(f"{page_origin}/heygen_v1_demo.html?" + urlencode({"server": heygen.url, "key": API_KEY}))
    assert page.evaluate("demo.newSession('ava', 'heart')")
    assert heygen.open_sessions() == 1
    page.evaluate("demo.start()")
    page.wait_for_function("""() => { const v = document.querySelector('#media');
        return v.videoWidth > 0 && v.currentTime > 1; }""", timeout=30_000)
    assert page.eval_on_selector("#media", "v => v.videoWidth") == 640
    page.evaluate("demo.repeat('Hello from a page of another origin.')")
    page.wait_for_function("() => messages.some(m => m.type === 'avatar_start_talking')", timeout=15_000)
    page.wait_for_function("() => demo.loudness() > 0.05", timeout=15_000, polling=20)  # heard in the page
    page.wait_for_function("() => messages.some(m => m.type === 'avatar_stop_talking')", timeout=30_000)
    page.evaluate("demo.close()")
    assert heygen.open_sessions() == 0
    assert page.locator("#status").text_content().splitlines() == [
        "Session creation completed", "Session started successfully", "Task sent successfully",
        "Connection closed successfully"]
    assert not failed, failed  # no CORS refusal, no failed fetch
