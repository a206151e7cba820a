import asyncio

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
    img = load_upload(path)
    side = backgrounds.STORED_MAX_SIDE
    assert img.shape == (round(side / 3), side, 3) and tuple(img[0, 0]) == (10, 20, 30)


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
