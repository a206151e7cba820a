"""Ready for Hugging Face Spaces and public links: the README's Space front matter
matches what is installed, and a share link that cannot be had leaves the app serving."""

from __future__ import annotations

from importlib.metadata import version

import httpx
import pytest

from tests.support.app_process import ROOT, AppProcess, free_port


def front_matter() -> dict[str, str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n"), "README.md must open with the Space's front matter"
    block = text[4 : text.index("\n---\n", 4)]
    pairs = (line.split(":", 1) for line in block.splitlines() if ":" in line)
    return {key.strip(): value.strip().strip('"') for key, value in pairs}


def test_space_front_matter_matches_the_installed_gradio():
    meta = front_matter()
    assert meta["sdk"] == "gradio"
    assert meta["sdk_version"] == version("gradio")
    assert meta["app_file"] == "app.py" and (ROOT / meta["app_file"]).exists()
    assert meta["python_version"] in ("3.10", "3.11", "3.12")
    pinned = dict(line.split("==") for line in (ROOT / "requirements.txt").read_text().splitlines()
                  if "==" in line and not line.startswith("#"))
    assert pinned["gradio"] == meta["sdk_version"]


@pytest.mark.integration
def test_share_without_the_share_service_keeps_serving_locally():
    dead_proxy = f"http://127.0.0.1:{free_port()}"  # every outside address is unreachable, as offline
    app = AppProcess({"SHARE": "1", "HTTPS_PROXY": dead_proxy, "HTTP_PROXY": dead_proxy, "ALL_PROXY": dead_proxy,
                      "NO_PROXY": "127.0.0.1,localhost"}).wait_ready()
    try:
        lines = app.wait_for_output("No public share link")  # the share attempt ends after the page is up
        assert lines and f"Serving locally only, at {app.url}" in lines[0], app.output()
        assert httpx.get(app.url + "/", timeout=10).status_code == 200
        assert app.output().count("No public share link") == 1  # one line, not one per request
    finally:
        app.stop()
