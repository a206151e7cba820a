"""Issue 11, hardening: each class of attack or fault reproduced, and the rule behind its fix."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

import pytest
from fastrtc import WebRTC

from app import build_app
from avatar_core.providers.local.service import LocalService
from avatar_core.server.logs import HIDDEN, RedactCredentials
from avatar_core.server.turn import IceConfiguration
from avatar_core.settings import Settings
from tests.support.app_process import AppProcess
from tests.support.openai_process import OpenAIServerProcess
from tests.support.webrtc_viewer import Viewer

ROOT = Path(__file__).resolve().parent.parent


# --- 13. No credential in any log line, whatever a library logs --------------------------
def record(msg: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc else None
    return logging.LogRecord("httpx2", logging.INFO, __file__, 1, msg, args, exc_info)


def test_the_log_filter_hides_secrets_and_url_credentials_in_messages_args_and_tracebacks():
    redact = RedactCredentials(["sk-live-123456", "hf_abcdef"])
    r = record('HTTP Request: POST %s "%s"', "http://bob:pa55@llm.local:8000/v1/chat", "HTTP/1.1 200 OK")
    redact.filter(r)
    assert r.getMessage() == f'HTTP Request: POST http://{HIDDEN}@llm.local:8000/v1/chat "HTTP/1.1 200 OK"'
    r = record("headers %s", {"Authorization": "Bearer sk-live-123456", "x": "hf_abcdef"})
    redact.filter(r)
    assert "sk-live-123456" not in r.getMessage() and "hf_abcdef" not in r.getMessage()
    try:
        raise ValueError("cannot reach https://u:sk-live-123456@host/v1")
    except ValueError as exc:
        r = record("failed", exc=exc)
    redact.filter(r)
    text = logging.Formatter().format(r)
    assert "sk-live-123456" not in text and "ValueError" in text and f"https://{HIDDEN}@host/v1" in text


@pytest.mark.integration
def test_an_llm_address_with_credentials_and_a_debugging_library_leak_nothing():
    llm = OpenAIServerProcess().wait_ready()
    port = llm.base_url.split(":")[-1].split("/")[0]
    secret_url = f"http://avatar:Pa55-w0rd-xyz@127.0.0.1:{port}/v1"
    app = AppProcess({"OPENAI_BASE_URL": secret_url, "OPENAI_API_KEY": "sk-test-9f8e7d6c5b4a",
                      "OPENAI_LOG": "debug", "LLM_MODEL": "stub-model"}).wait_ready()
    try:
        llm.script(chunks=["Fine, thanks."])

        async def body() -> None:
            async with Viewer(app.url) as viewer:
                await viewer.acall("new_session", "ava", "heart", "low")
                await viewer.start()
                status = await viewer.acall("talk", "How are you?", "llm")
                assert "The LLM answered" in status
                await viewer.acall("close_session")

        asyncio.run(body())
    finally:
        app.stop()
        llm.stop()
    output = app.output()
    assert "Pa55-w0rd-xyz" not in output and "sk-test-9f8e7d6c5b4a" not in output
    assert "session" in output  # the log was written at all


# --- 14. No public STUN: only the ICE servers configured or given by the upstream ---------
def test_every_peer_connection_in_the_tree_is_given_its_ice_servers():
    made = []
    this_test = Path(__file__).resolve()
    for path in [*ROOT.glob("avatar_core/**/*.py"), *ROOT.glob("tests/**/*.py"), *ROOT.glob("bench/*.py")]:
        if path.resolve() == this_test:
            continue
        for line in path.read_text().splitlines():
            if re.search(r"\bRTCPeerConnection\(", line) and not line.lstrip().startswith("#"):
                made.append((path.name, line.strip()))
    assert made, "no peer connections found: the search is broken"
    bare = [m for m in made if "RTCPeerConnection()" in m[1] or "RTCConfiguration(" not in m[1]]
    assert not bare, f"aiortc's default asks Google's public STUN server: {bare}"


def server_side(settings: Settings) -> tuple[IceConfiguration, list[WebRTC]]:
    ice = IceConfiguration(settings)
    ice.start()
    demo, _ = build_app(settings, ice, LocalService())
    return ice, [block for block in demo.blocks.values() if isinstance(block, WebRTC)]


def test_the_apps_own_peers_use_only_the_configured_ice_servers_and_follow_renewals():
    ice, components = server_side(Settings(_env_file=None))
    assert len(components) == 2
    assert all(c.server_rtc_configuration.iceServers == [] for c in components)  # not aiortc's default STUN
    ice, components = server_side(Settings(_env_file=None, turn_provider="custom",
                                           turn_urls="turn:turn.example.org:3478", turn_username="u",
                                           turn_credential="p"))
    for c in components:
        [server] = c.server_rtc_configuration.iceServers
        assert (server.urls, server.username, server.credential) == (["turn:turn.example.org:3478"], "u", "p")
    ice._apply([{"urls": ["turn:renewed.example.org"], "username": "u2", "credential": "p2"}])  # a renewal
    assert all(c.server_rtc_configuration.iceServers[0].urls == ["turn:renewed.example.org"] for c in components)
