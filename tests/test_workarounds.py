"""Each workaround in avatar_core/server/workarounds.py is written for one pinned
version of Gradio or fastrtc. When a pin moves, this fails: check each workaround
against the new version, drop the ones it no longer needs, then update WORKS_AROUND."""

from importlib.metadata import version
from pathlib import Path

from avatar_core.server.workarounds import WORKS_AROUND, StableVideoHandler

ROOT = Path(__file__).resolve().parent.parent


def pins() -> dict[str, str]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return dict(line.split("==") for line in lines if "==" in line and not line.startswith("#"))


def test_the_workarounds_are_for_the_pinned_and_installed_versions():
    for package, written_for in WORKS_AROUND.items():
        assert pins()[package] == written_for, f"{package} pin moved: review server/workarounds.py"
        assert version(package) == written_for, f"{package} {version(package)} installed: review workarounds"


def test_the_video_handler_keeps_its_first_callable():
    def frames(session_id):
        yield from ()

    handler = StableVideoHandler(frames, fps=25)
    for _ in range(2000):  # what fastrtc 0.0.34 does on every offer
        handler.callable = lambda *a, inner=handler.callable: inner(*a)
    assert handler.callable is frames and handler.fps == 25
