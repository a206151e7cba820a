import asyncio
import os

import numpy as np
import pytest
from PIL import Image

from avatar_core.errors import UserError
from avatar_core.media import backgrounds
from avatar_core.media.backgrounds import BackgroundChoice, BackgroundError, load_upload, parse_color
from tests.support.controllers import started_controller


@pytest.mark.parametrize(("text", "rgb"), [
    ("#1e293b", (30, 41, 59)), ("1E293B", (30, 41, 59)), ("#abc", (170, 187, 204)),
    ("rgb(30, 41, 59)", (30, 41, 59)), ("rgba(255, 0, 10.4, 1)", (255, 0, 10)),
])
def test_colours(text, rgb):
    assert parse_color(text) == rgb


@pytest.mark.parametrize("text", ["", "red", "#12345", "rgb(300, 0, 0)", "javascript:alert(1)"])
def test_bad_colours(text):
    with pytest.raises(BackgroundError, match="not a colour"):
        parse_color(text)


def test_a_good_upload_is_kept_small(tmp_path):
    path = tmp_path / "wide.png"
    Image.new("RGB", (3000, 1000), (10, 20, 30)).save(path)
    stored = load_upload(path)
    img = stored.pixels()
    side = backgrounds.STORED_MAX_SIDE
    assert img.shape == (round(side / 3), side, 3) and np.abs(img[0, 0].astype(int) - (10, 20, 30)).max() <= 2
    assert len(stored.jpeg) < 50_000  # a flat picture: tiny


def test_a_noisy_upload_is_kept_within_its_byte_bound(tmp_path):
    path = tmp_path / "noise.png"
    noise = np.random.default_rng(1).integers(0, 256, (1280, 1280, 3), dtype=np.uint8)
    Image.fromarray(noise).save(path)
    assert os.path.getsize(path) > 4_000_000  # as raw pixels: ~4.9 MB
    stored = load_upload(path)
    assert len(stored.jpeg) <= backgrounds.STORED_MAX_BYTES and stored.pixels().shape[0] >= 960


def test_uploads_are_checked_for_type_bytes_and_pixels(tmp_path, monkeypatch):
    (tmp_path / "notes.txt").write_text("not a picture")
    Image.new("RGB", (8, 8)).save(tmp_path / "anim.gif")
    Image.new("L", (6000, 5000)).save(tmp_path / "huge.png")
    (tmp_path / "big.png").write_bytes(b"\x89PNG" + b"\0" * (backgrounds.UPLOAD_MAX_BYTES + 1))
    for name, message in [("notes.txt", "not a readable picture"), ("anim.gif", "GIF files are not accepted"),
                          ("huge.png", "6000x5000 pixels"), ("big.png", "the limit is 8 MB")]:
        with pytest.raises(BackgroundError, match=message):
            load_upload(tmp_path / name)


def test_background_choices_are_checked_even_without_a_session():
    async def body():
        c = started_controller()
        with pytest.raises(UserError, match="Unknown preset 'beach'"):
            await c.set_background("b", True, "preset", "#000000", "beach", None)
        with pytest.raises(UserError, match="Upload a picture first"):
            await c.set_background("b", True, "upload", "#000000", "studio", None)
        assert c.browser("b").background == BackgroundChoice()

    asyncio.run(body())


def test_presets_ship_in_assets():
    assert {"studio", "sunset", "office"} <= set(backgrounds.preset_names())
    frame = BackgroundChoice(remove=True, kind="preset", preset="sunset").render(640, 360)
    assert frame.shape == (360, 640, 3) and frame.std() > 5


def test_a_bad_upload_changes_nothing_in_the_session(tmp_path):
    (tmp_path / "bad.png").write_text("nope")

    async def body():
        c = started_controller()
        try:
            await c.new_session("b", "ava", "heart", "low")
            await c.set_background("b", True, "color", "#ff0000", "studio", None)
            before = c.browser("b").background
            with pytest.raises(UserError, match="not a readable picture"):
                await c.set_background("b", True, "upload", "#ff0000", "studio", str(tmp_path / "bad.png"))
            assert c.browser("b").background == before
            session = c.sessions.get(c.browser("b").session_id)
            assert tuple(session.clock._background[0, 0]) == (0, 0, 255)  # still red (BGR)
        finally:
            await c.sessions.close_all("done")

    asyncio.run(body())


def test_uploaded_pictures_kept_for_all_browsers_stay_within_a_budget(tmp_path):
    """Issue 11, class 4: each browser's picture is kept for an hour; thousands of browsers
    must not hold thousands of pictures. Over the budget, idle browsers' pictures go first."""
    rng = np.random.default_rng(2)
    for n in range(6):
        Image.fromarray(rng.integers(0, 256, (400, 600, 3), dtype=np.uint8)).save(tmp_path / f"p{n}.png")

    async def body():
        c = started_controller()
        try:
            size = len(load_upload(tmp_path / "p0.png").jpeg)
            c.max_picture_bytes = 3 * size + size // 2  # room for three
            await c.new_session("live", "ava", "heart", "low")
            await c.set_background("live", True, "upload", "#000000", "studio", str(tmp_path / "p0.png"))
            for n in range(1, 6):
                await c.set_background(f"idle-{n}", True, "upload", "#000000", "studio", str(tmp_path / f"p{n}.png"))
            kept = {key for key in ["live", *(f"idle-{n}" for n in range(1, 6))]
                    if c.browser(key).background.upload is not None}
            assert kept == {"live", "idle-4", "idle-5"}  # the open session's and the newest idle ones
            assert "upload it again" in c.status("idle-1")[1] and "upload it again" not in c.status("live")[1]
            with pytest.raises(UserError, match="Upload a picture first"):  # and it says so when used
                await c.set_background("idle-1", True, "upload", "#000000", "studio", None)
        finally:
            await c.sessions.close_all("test over")

    asyncio.run(body())
