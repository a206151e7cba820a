"""A visitor's first minute, in a real headless Chromium (Debian's): an error is said in the
status log and covers none of the buttons; Close leaves no frozen frame in the player; the
stream stats panel shows live numbers while streaming."""

from __future__ import annotations

import re

import pytest

from avatar_core.server.page_scripts import IDLE_NOTE, IDLE_NOTE_ID
from tests.support.app_process import AppProcess
from tests.support.chromium import click_expecting, expect, new_and_start, playing
from tests.support.log_lines import session_closed

pytestmark = [pytest.mark.integration, pytest.mark.browser]
BUTTONS = ["new-btn", "start-btn", "close-btn", "repeat-btn", "talk-btn", "interrupt-btn"]
FPS = re.compile(r"^Video sent: (\d+(?:\.\d+)?) frames/s", re.MULTILINE)
TICKS = re.compile(r"^Late ticks: \d+ of (\d+)$", re.MULTILINE)


@pytest.fixture(scope="module")
def app():
    app = AppProcess().wait_ready()
    yield app
    app.stop()


def uncovered(page, element_id: str) -> bool:
    """Whatever is on top at the button's centre and near each of its corners is the button."""
    return page.evaluate("""(id) => {
        const button = document.getElementById(id);
        const r = button.getBoundingClientRect();
        const points = [[r.x + r.width / 2, r.y + r.height / 2], [r.x + 6, r.y + 6], [r.right - 6, r.y + 6],
                        [r.x + 6, r.bottom - 6], [r.right - 6, r.bottom - 6]];
        return points.every(([x, y]) => { const top = document.elementFromPoint(x, y);
                                          return top !== null && (top === button || button.contains(top)); }); }""",
                         element_id)


def test_an_error_is_said_in_the_status_log_and_covers_no_button(app, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(app.url)
    # queued (Start) and unqueued (Repeat) actions alike
    click_expecting(page, "#start-btn", "Error: There is no open session to start. Click New first.")
    assert page.locator(".toast-body:visible").count() == 0  # no toast over the page
    assert [b for b in BUTTONS if not uncovered(page, b)] == []
    click_expecting(page, "#repeat-btn", "Error: There is no open session to speak in. Click New first.")
    assert page.locator(".toast-body:visible").count() == 0
    assert [b for b in BUTTONS if not uncovered(page, b)] == []
    page.close()


def test_close_leaves_the_player_idle_not_frozen_and_a_new_stream_plays_again(app, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(app.url)
    new_and_start(page)
    playing(page, "#avatar-video video")
    note = page.locator(f"#{IDLE_NOTE_ID}")
    expect(note).to_have_count(0)  # never shown before a stream has ended
    click_expecting(page, "#close-btn", session_closed("closed by you"))
    page.wait_for_function("""() => document.querySelector('#avatar-video video').srcObject === null
                                    && document.querySelector('#avatar-audio audio').srcObject === null""",
                           timeout=10_000)
    expect(note).to_be_visible()
    expect(note).to_have_text(IDLE_NOTE)
    expect(page.locator("#avatar-video video")).to_be_hidden()  # no last frame, frozen

    new_and_start(page)  # the same tab streams again: the note goes, the player plays
    before, after = playing(page, "#avatar-video video")
    assert after["time"] > before["time"] and not after["paused"]
    expect(note).to_be_hidden()
    playing(page, "#avatar-audio audio")
    page.close()


def test_the_stream_stats_panel_shows_live_numbers_while_streaming(app, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(app.url)
    stats = page.locator("#stats textarea")
    expect(stats).to_be_hidden()  # collapsed by default
    page.get_by_text("Stream stats").click()
    expect(stats).to_have_value(re.compile(r"^No session: click New, then Start\."), timeout=10_000)
    new_and_start(page)
    expect(stats).to_have_value(FPS, timeout=10_000)
    first = stats.input_value()
    # the refresh writes it again each second; the clock's ticks only grow while it streams
    page.wait_for_function("""([selector, first]) => document.querySelector(selector).value !== first""",
                           arg=["#stats textarea", first], timeout=10_000)
    second = stats.input_value()
    fps = [float(FPS.search(text).group(1)) for text in (first, second)]  # type: ignore[union-attr]
    ticks = [int(TICKS.search(text).group(1)) for text in (first, second)]  # type: ignore[union-attr]
    assert fps[0] > 0 and fps[1] > 0, (first, second)
    assert ticks[1] > ticks[0], (first, second)
    assert "open session(s)" in second and "<" not in second  # plain text
    click_expecting(page, "#close-btn", session_closed("closed by you"))
    expect(stats).to_have_value(re.compile(r"^No session: click New, then Start\."), timeout=10_000)
    page.close()
