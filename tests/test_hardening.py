"""Issue 11, hardening: each class of attack or fault reproduced, and the rule behind its fix."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from fastrtc import WebRTC

from app import build_app
from avatar_core.errors import SpeechQueueFullError, UpstreamError, UserError
from avatar_core.media.clock import ClockStats
from avatar_core.media.format import AUDIO_RATE
from avatar_core.providers.heygen.errors import BadKeyError, RequestTimeoutError
from avatar_core.providers.local.avatar import MAX_QUEUED_SPEECH_S, LocalAvatar
from avatar_core.providers.local.service import LocalService
from avatar_core.providers.local.speech import Spoken
from avatar_core.providers.upstream_ledger import Listed, UpstreamLedger
from avatar_core.server.logs import HIDDEN, RedactCredentials
from avatar_core.server.turn import IceConfiguration
from avatar_core.server.workarounds import CALL_NOT_RUN
from avatar_core.session.admission import Admission
from avatar_core.session.controller import MAX_BROWSERS
from avatar_core.session.status_log import MAX_LINE_CHARS, StatusLog
from avatar_core.settings import Settings
from avatar_core.voice.recognizer import Recognizer
from tests.support.app_process import AppProcess
from tests.support.controllers import started_controller
from tests.support.fake_avatars import BlankAvatar
from tests.support.openai_process import OpenAIServerProcess
from tests.support.recording import Recorder
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
    demo, _ = build_app(settings, ice, LocalService(), Recognizer())
    return ice, [block for block in demo.blocks.values() if isinstance(block, WebRTC)]


def test_the_apps_own_peers_use_only_the_configured_ice_servers_and_follow_renewals():
    ice, components = server_side(Settings(_env_file=None))
    assert len(components) == 3  # video, audio, microphone
    assert all(c.server_rtc_configuration.iceServers == [] for c in components)  # not aiortc's default STUN
    ice, components = server_side(Settings(_env_file=None, turn_provider="custom",
                                           turn_urls="turn:turn.example.org:3478", turn_username="u",
                                           turn_credential="p"))
    for c in components:
        [server] = c.server_rtc_configuration.iceServers
        assert (server.urls, server.username, server.credential) == (["turn:turn.example.org:3478"], "u", "p")
    ice._apply([{"urls": ["turn:renewed.example.org"], "username": "u2", "credential": "p2"}])  # a renewal
    assert all(c.server_rtc_configuration.iceServers[0].urls == ["turn:renewed.example.org"] for c in components)


# --- 1, 2, 4. Every API input checked for type and size at the edge, once ------------------
@pytest.fixture(scope="module")
def app():
    process = AppProcess().wait_ready()
    yield process
    process.stop()


MB = 1_000_000
TOO_LARGE = "The request is too large: the limit is 256 KB."  # refused before parsing: no status line
NOT_RUN = CALL_NOT_RUN.format(kind="ValueError")  # Gradio's own checks: nothing of ours ran
BEFORE_OUR_CODE = (TOO_LARGE, NOT_RUN[:26], "Value: ")  # the request limit's, Gradio's own checks
QUALITIES = "Valid qualities: low (640x360), medium (854x480), high (1280x720)."
AVATARS = "Valid avatar IDs: ava, leo, mira."
VOICES = "Valid voice IDs: heart, espeak-us-male, espeak-uk-female."
NOT_A_COLOUR = "is not a colour; use a hex colour like #1e293b."
HOSTILE = [  # (api, arguments, the one line the caller gets and the page shows)
    # New: types, sizes, unknown and odd values
    ("new_session", ([[1, 2], "heart", "low"]), "The avatar ID must be text, not a list."),
    ("new_session", (["ava", "heart", ["low"]]), "The quality must be text, not a list."),
    ("new_session", (["ava", {"id": 1}, "low"]), "The voice ID must be text, not an object."),
    ("new_session", (["ava", 7, "low"]), "The voice ID must be text, not a number."),
    ("new_session", ([True, "heart", "low"]), "The avatar ID must be text, not true or false."),
    ("new_session", (["ava", "heart", 3]), "The quality must be text, not a number."),
    ("new_session", (["ava", "heart", 1.5]), "The quality must be text, not a number."),
    ("new_session", ([None, "heart", "low"]), f"Unknown avatar ID ''. {AVATARS}"),
    ("new_session", (["   ", "heart", "low"]), f"Unknown avatar ID ''. {AVATARS}"),
    ("new_session", (["ava", "", "low"]), f"Unknown voice ID ''. {VOICES}"),
    ("new_session", (["ava", "heart", None]), f"Unknown quality ''. {QUALITIES}"),
    ("new_session", (["x" * 200_000, "heart", "low"]), "The avatar ID is 200000 characters; the limit is 200."),
    ("new_session", (["ava", "v" * 201, "low"]), "The voice ID is 201 characters; the limit is 200."),
    ("new_session", (["ava", "heart", "q" * 41]), "The quality is 41 characters; the limit is 40."),
    ("new_session", (["ava", "heart", "ultra"]), f"Unknown quality 'ultra'. {QUALITIES}"),
    ("new_session", (["ava", "heart", "LOW"]), f"Unknown quality 'LOW'. {QUALITIES}"),
    ("new_session", (["n" * 200, "heart", "low"]), "Unknown avatar ID '" + "n" * 38 + f"…. {AVATARS}"),
    ("new_session", (["ava\ud800", "heart", "low"]), f"Unknown avatar ID 'ava\ufffd'. {AVATARS}"),
    ("new_session", (["ava", "fenrir\x00\x07", "low"]), f"Unknown voice ID 'fenrir'. {VOICES}"),
    ("new_session", (["<script>alert(1)</script>", "heart", "low"]),
     f"Unknown avatar ID '<script>alert(1)</script>'. {AVATARS}"),
    ("new_session", (["../../etc/passwd", "heart", "low"]), f"Unknown avatar ID '../../etc/passwd'. {AVATARS}"),
    ("new_session", (["ava", "heart"]), NOT_RUN),
    ("new_session", (["x" * MB, "heart", "low"]), TOO_LARGE),
    ("new_session", (["ava", "\ud800" * 300_000, "low"]), TOO_LARGE),
    # Background
    ("set_background", ([True, "color", "rgb(1.2.3, 0, 0)", "studio", None]), f"'rgb(1.2.3, 0, 0)' {NOT_A_COLOUR}"),
    ("set_background", ([True, "color", "rgb(" + "9" * 400 + ", 0, 0)", "studio", None]),
     "The colour is 411 characters; the limit is 40."),
    ("set_background", ([True, "color", "#" * 300_000, "studio", None]), TOO_LARGE),
    ("set_background", ([True, "color", "#" * 50_000, "studio", None]),
     "The colour is 50000 characters; the limit is 40."),
    ("set_background", ([True, "color", None, "studio", None]), f"'' {NOT_A_COLOUR}"),
    ("set_background", ([True, "color", "#12", "studio", None]), f"'#12' {NOT_A_COLOUR}"),
    ("set_background", ([True, "color", "rgb(256, 0, 0)", "studio", None]), f"'rgb(256, 0, 0)' {NOT_A_COLOUR}"),
    ("set_background", ([True, "color", "rgb(-1, 0, 0)", "studio", None]), f"'rgb(-1, 0, 0)' {NOT_A_COLOUR}"),
    ("set_background", ([True, "color", "javascript:alert(1)", "studio", None]),
     f"'javascript:alert(1)' {NOT_A_COLOUR}"),
    ("set_background", ([True, "color", "red; background:url(x)", "studio", None]),
     f"'red; background:url(x)' {NOT_A_COLOUR}"),
    ("set_background", ([True, "preset", "#000000", ["studio"], None]), "The preset must be text, not a list."),
    ("set_background", ([True, "preset", "#000000", "b" * 60, None]), "The preset is 60 characters; the limit is 40."),
    ("set_background", ([True, "preset", "#000000", "beach", None]),
     "Unknown preset 'beach'. Presets: office, studio, sunset."),
    ("set_background", ([True, "preset", "#000000", "../../app", None]),
     "Unknown preset '../../app'. Presets: office, studio, sunset."),
    ("set_background", ([True, "preset", "#000000", None, None]),
     "Unknown preset ''. Presets: office, studio, sunset."),
    ("set_background", (["yes", "color", "#000000", "studio", None]),
     "Remove background must be true or false, not text."),
    ("set_background", ([[True], "color", "#000000", "studio", None]),
     "Remove background must be true or false, not a list."),
    ("set_background", ([1, "color", "#000000", "studio", None]),
     "Remove background must be true or false, not a number."),
    ("set_background", ([True, None, "#000000", "studio", None]),
     "Unknown background kind ''; use color, preset or upload."),
    ("set_background", ([True, "upload", "#000000", "studio", None]),
     "Upload a picture first, or choose a colour or preset."),
    ("set_background", ([True, "upload", "#000000", "studio", "/etc/passwd"]),
     NOT_RUN.replace("ValueError", "ValidationError")),
    ("set_background", ([True, "upload", "#000000", "studio", {"path": "/etc/passwd"}]),
     NOT_RUN.replace("ValueError", "ValidationError")),
    ("set_background", ([True, "upload", "#000000", "studio", "p" * 5000]),
     NOT_RUN.replace("ValueError", "ValidationError")),
    ("set_background", ([True, ["color"], "#000000", "studio", None]),
     "Value: ['color'] (type: <class 'list'>) is not in the list of choices: ['color', 'preset', 'upload']"),
    # Repeat and Talk
    ("repeat", ({"text": "hi"},), "There is no open session to speak in. Click New first."),
    ("repeat", ([1, 2],), "There is no open session to speak in. Click New first."),  # the textbox makes it text
    ("repeat", ("x" * 5000,), "The message is 5000 characters; the limit is 1000."),
    ("repeat", (None,), "There is no open session to speak in. Click New first."),
    ("repeat", ("",), "There is no open session to speak in. Click New first."),
    ("repeat", ("x" * MB,), TOO_LARGE),
    ("talk", (None, "llm"), "There is no open session to talk in. Click New first."),
    ("talk", ("y" * 1001, "llm"), "The message is 1001 characters; the limit is 1000."),
    ("talk", ("hi", "heygen"), "Value: 'heygen' (type: <class 'str'>) is not in the list of choices: ['llm']"),
    ("talk", ("hi", "z" * 5000), ("Value: '" + "z" * 5000)[:499] + "…"),  # Gradio's own message, its echo cut
    ("talk", ("hi", ["llm"]), "Value: ['llm'] (type: <class 'list'>) is not in the list of choices: ['llm']"),
    # actions with no session
    ("start_stream", (), "There is no open session to start. Click New first."),
    ("interrupt", (), "There is no open session to interrupt. Click New first."),
    ("close_session", (), "There is no open session to close. Click New first."),
]


def call(url: str, api_name: str, args: list, session_hash: str) -> tuple[str, object]:
    """One API call over plain HTTP, as any client can make it (Gradio's /run/ route, with
    the caller's session hash), the JSON written with escapes, so a lone surrogate travels
    as \\ud800: ("error", the message) or ("complete", the last output: the status log)."""
    body = json.dumps({"data": list(args), "session_hash": session_hash})
    reply = httpx.post(f"{url}/gradio_api/run/{api_name}", content=body,
                       headers={"content-type": "application/json"}, timeout=60)
    payload = reply.json()
    if "error" in payload:
        return "error", payload["error"]
    return "complete", payload["data"][-1]


@pytest.mark.integration
def test_hostile_inputs_get_one_clear_line_and_change_nothing(app):
    hacker = "hostile-caller-1"
    failures = []
    for api_name, args, expected in HOSTILE:
        before = str(call(app.url, "status", [], hacker)[1])
        event, data = call(app.url, api_name, list(args), hacker)
        if (event, data) != ("error", expected):
            failures.append((api_name, expected, event, str(data)[:300]))
        status = str(call(app.url, "status", [], hacker)[1])
        if expected.startswith(BEFORE_OUR_CODE):  # refused before any of ours ran: the log is as it was
            if status != before:
                failures.append((api_name, expected, "status changed: " + status[-300:]))
        elif not status.rstrip().endswith(f"Error: {expected}"):
            failures.append((api_name, expected, "status: " + status[-300:]))
    assert len(HOSTILE) >= 60
    assert not failures, "\n".join(map(str, failures))
    # nothing was changed: no session, and the app still serves this caller normally
    assert "created" not in str(call(app.url, "status", [], hacker)[1])
    event, data = call(app.url, "new_session", ["ava", "heart", "low"], hacker)
    assert event == "complete" and re.search(r"Session [0-9a-f]{8} created", str(data)), data
    assert call(app.url, "close_session", [], hacker)[0] == "complete"


@pytest.mark.integration
def test_oversized_bodies_are_refused_unread_also_when_sent_in_chunks(app):
    def chunked(text: str):  # an iterator: httpx sends it chunked, with no content-length
        data = json.dumps({"data": [True, "color", text, "studio", None], "session_hash": "chunky"}).encode()
        yield from (data[i : i + 8192] for i in range(0, len(data), 8192))

    url = f"{app.url}/gradio_api/run/set_background"
    big = httpx.post(url, content=chunked("#" * 300_000), headers={"content-type": "application/json"}, timeout=30)
    assert (big.status_code, big.json()) == (413, {"error": TOO_LARGE})
    small = httpx.post(url, content=chunked("#" * 100_000), headers={"content-type": "application/json"}, timeout=30)
    assert small.json()["error"] == "The colour is 100000 characters; the limit is 40."  # it reached our check


# --- 6. Speech waiting to be played is bounded by duration, not only by messages ----------
class LongVoice:
    """A voice that returns 10 s of audio per sentence at once, 200 s per message."""

    voice_id, label = "long", "Long"

    def sentences(self, text: str):
        for _ in range(20):
            yield Spoken(np.full(10 * AUDIO_RATE, 0.1, np.float32))


def test_synthesis_waits_while_30_s_of_speech_wait_and_speak_refuses_more():
    async def body() -> None:
        avatar = LocalAvatar("ava", LongVoice(), "low", Recorder())
        try:
            await avatar.speak("a long message")
            await asyncio.sleep(0.5)  # the worker has had every chance to synthesise all of it
            queued_s = avatar._speech.pending_samples / AUDIO_RATE
            assert MAX_QUEUED_SPEECH_S <= queued_s <= MAX_QUEUED_SPEECH_S + 10  # not 200 s (and 77 MB)
            with pytest.raises(SpeechQueueFullError, match="30 s of speech are already waiting"):
                await avatar.speak("more")
            for index in range(25 * 12):  # 12 s played by the clock: room again, synthesis goes on
                avatar.tick(index)
            await asyncio.sleep(0.3)
            assert avatar._speech.pending_samples / AUDIO_RATE >= MAX_QUEUED_SPEECH_S
        finally:
            await avatar.close()

    asyncio.run(body())


def test_audio_played_from_elsewhere_is_bounded_by_duration_too():
    """LITE (our voice to a relayed face) and the LiveAvatar stand-in push audio straight in."""
    async def body() -> None:
        avatar = LocalAvatar("ava", LongVoice(), "low", Recorder())
        try:
            second = np.full(AUDIO_RATE, 0.1, np.float32)
            accepted = sum(avatar.play(second) for _ in range(40))
            assert accepted == MAX_QUEUED_SPEECH_S  # 30 one-second pieces, then refused
            assert avatar.tick(0).speaking and avatar.tick(1).audio.max() > 0.05
        finally:
            await avatar.close()
        assert not avatar.play(second)  # closed

    asyncio.run(body())


# --- 3. No stack trace reaches a client --------------------------------------------------
@pytest.mark.integration
def test_an_unhandled_error_answers_without_a_traceback(app):
    for path, body in [("/gradio_api/queue/join", {"data": [], "fn_index": 999, "session_hash": "h"}),
                       ("/gradio_api/run/predict", {"data": [], "fn_index": 999, "session_hash": "h"}),
                       ("/gradio_api/run/predict", {"data": "not a list", "fn_index": "x"})]:
        reply = httpx.post(app.url + path, json=body, timeout=30)
        assert reply.status_code >= 400, (path, reply.status_code)
        text = reply.text
        assert "Traceback" not in text and 'File "' not in text and ".py" not in text, text[:300]
    assert httpx.get(app.url + "/", timeout=30).status_code == 200  # and it goes on serving


# --- 4. What is echoed and kept per browser is bounded -----------------------------------
def test_a_status_line_is_cut_and_the_browsers_kept_are_bounded_sparing_open_sessions():
    log = StatusLog()
    log.add("x" * MB)
    assert len(log.text()) <= MAX_LINE_CHARS + 20

    async def body() -> None:
        c = started_controller()
        try:
            await c.new_session("with-a-session", "ava", "heart", "low")
            for i in range(MAX_BROWSERS + 200):  # API callers with fresh session hashes
                c.status(f"caller-{i}")
            assert len(c._browsers) <= MAX_BROWSERS
            assert "with-a-session" in c._browsers  # its session is open: never forgotten
            assert f"caller-{MAX_BROWSERS + 199}" in c._browsers and "caller-0" not in c._browsers
        finally:
            await c.sessions.close_all("test over")

    asyncio.run(body())


# --- 8. One client cannot hold every session slot -----------------------------------------
def test_one_client_address_holds_at_most_its_share_of_sessions():
    async def body() -> None:
        c = started_controller(max_sessions=4, max_per_client=2)
        try:
            await c.new_session("tab-1", "ava", "heart", "low", client="203.0.113.7")
            made = asyncio.gather(c.new_session("tab-2", "ava", "heart", "low", client="203.0.113.7"),
                                  c.new_session("tab-3", "ava", "heart", "low", client="203.0.113.7"),
                                  return_exceptions=True)  # at once: one being made counts already
            results = await made
            refused = [str(r) for r in results if isinstance(r, UserError)]
            assert len(refused) == 1 and "You already have 2 avatar session(s) open from this address" in refused[0]
            await c.new_session("tab-4", "ava", "heart", "low", client="198.51.100.9")  # others still get one
            await c.close("tab-1")
            await c.new_session("tab-5", "ava", "heart", "low", client="203.0.113.7")  # a slot of its own again
            assert len(c.sessions) == 3
        finally:
            await c.sessions.close_all("test over")

    asyncio.run(body())


@pytest.mark.integration
def test_new_from_many_session_hashes_of_one_address_is_refused_over_http():
    process = AppProcess({"MAX_SESSIONS": "4", "MAX_SESSIONS_PER_CLIENT": "1"}).wait_ready()
    try:
        assert call(process.url, "new_session", ["ava", "heart", "low"], "hash-1")[0] == "complete"
        event, message = call(process.url, "new_session", ["ava", "heart", "low"], "hash-2")
        assert event == "error" and str(message).startswith("You already have 1 avatar session(s) open"), message
        assert call(process.url, "close_session", [], "hash-1")[0] == "complete"
        assert call(process.url, "new_session", ["ava", "heart", "low"], "hash-2")[0] == "complete"
    finally:
        process.stop()


# --- 7. Offers take a stream slot only for a started session's own browser -------------
async def offer_sdp(kind: str) -> str:
    """A well-formed offer whose peer will never connect (it is closed at once)."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver(kind, direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


def post_offer(url: str, component_id: int, session_hash: str, data: object) -> dict:
    body = {"component_id": component_id, "fn_name": "offer", "session_hash": session_hash, "data": data}
    return httpx.post(f"{url}/gradio_api/component_server/", json=body, timeout=30).json()


@pytest.mark.integration
def test_garbage_offers_cannot_lock_viewers_out_of_the_streams():
    async def body() -> None:
        # two sessions at most: fastrtc's own limit is then 4 peers per component
        process = AppProcess({"MAX_SESSIONS": "2"}).wait_ready()
        try:
            config = httpx.get(process.url + "/config", timeout=10).json()
            ids = {c["props"].get("elem_id"): c["id"] for c in config["components"]}
            sdp = {kind: await offer_sdp(kind) for kind in ("video", "audio")}
            components = {"video": ids["avatar-video"], "audio": ids["avatar-audio"]}
            # strangers with no session: refused, whatever they send
            for n in range(12):
                for kind, component in components.items():
                    offer = {"sdp": sdp[kind], "type": "offer", "webrtc_id": f"stranger{kind}{n}"}
                    assert post_offer(process.url, component, f"stranger-{n}", offer) == \
                        {"status": "failed", "meta": {"error": "no_started_session"}}
            # an attacker with a started session of its own: garbage and offers it never completes
            assert call(process.url, "new_session", ["ava", "heart", "low"], "attacker")[0] == "complete"
            assert call(process.url, "start_stream", [], "attacker")[0] == "complete"
            hostile = [("v=0 garbage", "offer", "invalid_offer"), (sdp["video"], "answer", "invalid_offer"),
                       ("x" * 100_000, "offer", "invalid_offer"), (None, "offer", "invalid_offer")]
            for n, (text, kind_of, error) in enumerate(hostile):
                reply = post_offer(process.url, components["video"], "attacker",
                                   {"sdp": text, "type": kind_of, "webrtc_id": f"bad{n}"})
                assert reply == {"status": "failed", "meta": {"error": error}}, reply
            for data in ([1, 2], "offer", {"sdp": sdp["video"], "type": "offer", "webrtc_id": ["x"]}):
                reply = post_offer(process.url, components["video"], "attacker", data)
                assert reply == {"status": "failed", "meta": {"error": "invalid_request"}}, reply
            for n in range(10):  # answered, and each replaces the one before: one slot held at most
                for kind, component in components.items():
                    reply = post_offer(process.url, component, "attacker",
                                       {"sdp": sdp[kind], "type": "offer", "webrtc_id": f"held{kind}{n}"})
                    assert "sdp" in reply, reply
            async with httpx.AsyncClient(timeout=30) as http:  # a burst at once: still one slot
                burst = [http.post(f"{process.url}/gradio_api/component_server/", json={
                    "component_id": components["video"], "fn_name": "offer", "session_hash": "attacker",
                    "data": {"sdp": sdp["video"], "type": "offer", "webrtc_id": f"burst{n}"}}) for n in range(16)]
                replies = [r.json() for r in await asyncio.gather(*burst)]
            assert sum("sdp" in r for r in replies) >= 1, replies
            # a candidate for someone else's connection is refused
            reply = post_offer(process.url, components["video"], "stranger-0",
                               {"type": "ice-candidate", "webrtc_id": "burst0", "candidate": {"candidate": "x"}})
            assert reply == {"status": "failed", "meta": {"error": "unknown_connection"}}, reply
            # the victim connects both streams at once and sees the avatar
            async with Viewer(process.url) as victim:
                await victim.acall("new_session", "ava", "heart", "low")
                await victim.start(timeout=15)
                await asyncio.sleep(1.0)
                assert len(victim.video.times) > 10 and len(victim.audio.times) > 10
            assert not process.lines("Traceback")
        finally:
            process.stop()

    asyncio.run(body())


# --- 10. The ledger adopts only what a lost creation could have made --------------------
def test_the_ledger_adopts_one_unstarted_session_per_lost_reply_and_nothing_else():
    async def body() -> None:
        stopped: list[str] = []
        upstream: list[Listed] = []

        async def stop(session_id: str) -> None:
            stopped.append(session_id)

        async def list_sessions() -> list[Listed]:
            return list(upstream)

        ledger = UpstreamLedger("Test", stop, list_sessions)
        now = time.time()
        with pytest.raises(RequestTimeoutError):
            async with ledger.creation():
                raise RequestTimeoutError()  # the request was sent; its reply never came
        for refusal in (BadKeyError("", 401), UpstreamError("", 400), ValueError()):  # nothing was made
            with pytest.raises(type(refusal)):
                async with ledger.creation():
                    raise refusal
        assert len(ledger.unanswered) == 1
        with pytest.raises(UpstreamError):
            async with ledger.creation():
                raise UpstreamError("bad gateway", 502)  # a gateway gave up: it may have been made
        assert len(ledger.unanswered) == 2
        ledger.unanswered.pop()
        async with ledger.creation() as record:
            record("ours-live")
        assert len(ledger.unanswered) == 1
        upstream[:] = [Listed("older", now - 60, False),  # made before the request: someone else's
                       Listed("started", now + 1, True),  # connected: a live stream, someone's
                       Listed("ours-live", now + 1, False),  # ours already
                       Listed("later", now + 30, False),  # made after we gave up: someone else's New
                       Listed("orphan", now + 1, False), Listed("another", now + 2, False),
                       Listed("no-time", None, False)]
        assert await ledger.reconcile() == 1
        assert stopped == ["orphan"] and not ledger.unanswered  # one per lost reply: "another" is kept
        assert await ledger.close_ours(frozenset({"ours-live"})) == 0  # the live one stays
        assert await ledger.close_ours(frozenset()) == 1 and stopped[-1] == "ours-live"
        await ledger.close()

    asyncio.run(body())


# --- 9. New sessions only while the running ones keep their frame rate ------------------
class HeavyAvatar(BlankAvatar):
    """Each frame costs 25 ms of interpreter time: one keeps 25 fps, two cannot (the GIL)."""

    def tick(self, index: int):
        end = time.thread_time() + 0.025  # this thread's own CPU time, not the wall clock
        while time.thread_time() < end:
            pass
        return super().tick(index)


class HeavyService(LocalService):
    async def create(self, avatar_id, voice_id, quality, events):
        return HeavyAvatar()


def test_admission_by_measured_frame_rate_below_the_ceiling_unit():
    clock = [0.0]
    admission = Admission(now=lambda: clock[0])
    assert admission.refusal() is None  # nothing measured: nobody to slow down
    for second in range(6):  # two sessions at 25 fps, none late
        clock[0] = second
        admission.sample({"a": ClockStats(25 * second, 0, 0, 0), "b": ClockStats(25 * second, 0, 0, 0)})
    assert admission.measure() == (25.0, 0.0) and admission.refusal() is None
    for second in range(6, 12):  # "b" falls to 20 fps, a third of its ticks late
        clock[0] = second
        admission.sample({"a": ClockStats(25 * second, 0, 0, 0),
                          "b": ClockStats(150 + 20 * (second - 5), 7 * (second - 5), 0, 0)})
    fps, late = admission.measure()  # type: ignore[misc]
    assert fps == pytest.approx(22.5) and late == pytest.approx(35 / 225)
    assert "at capacity" in (admission.refusal() or "")
    for second in range(12, 18):  # "b" closed: "a" alone keeps up again
        clock[0] = second
        admission.sample({"a": ClockStats(25 * second, 0, 0, 0)})
    assert admission.refusal() is None


@pytest.mark.integration
def test_new_sessions_are_refused_while_the_running_ones_would_fall_below_24_fps():
    async def admitted(c, expected: bool, timeout: float = 30) -> None:
        """Once the last 5 s show it (a shared machine may be slow to settle either way)."""
        deadline = time.monotonic() + timeout
        while (c.sessions.admission.refusal() is None) != expected:
            assert time.monotonic() < deadline, (expected, c.sessions.admission.measure())
            await asyncio.sleep(0.5)

    async def body() -> None:
        c = started_controller(max_sessions=10, service=HeavyService(), admission=Admission())
        try:
            await c.new_session("a", "ava", "heart", "low")
            await c.start("a")
            await admitted(c, True)  # one heavy stream: the machine keeps up
            await c.new_session("b", "ava", "heart", "low")
            await c.start("b")
            await admitted(c, False)  # two need 50 ms of interpreter time per 40 ms frame
            fps, _ = c.sessions.admission.measure()  # type: ignore[union-attr,misc]
            assert fps < 24
            with pytest.raises(UserError, match="The server is at capacity: the avatars already streaming run at"):
                await c.new_session("c", "ava", "heart", "low")
            assert len(c.sessions) == 2  # far below the ceiling of 10, and nothing was made
            await c.close("b")
            await admitted(c, True)
            await c.new_session("c", "ava", "heart", "low")  # room again
        finally:
            await c.sessions.close_all("test over")

    asyncio.run(body())


# --- 12. Everything shown is plain text: nothing in a message becomes an element ----------
@pytest.mark.browser
def test_html_css_and_markdown_in_the_transcript_stay_text_in_chromium(browser):
    from tests.support.chromium import click_expecting, expect, new_and_start

    bait = "http://127.0.0.1:9"  # nothing listens there: any request to it is the page obeying a message
    asked = f"<img src={bait}/u.png> <style>#status{{background:red}}</style> [click]({bait}/link)"
    reply = [f'Look <img src="{bait}/a.png"> here. ', f'![x]({bait}/m.png) <div style="transform:rotate(90deg)">'
             f'spin</div> <a href="{bait}/k">re-enter your HeyGen key</a>.']
    llm = OpenAIServerProcess()
    process = AppProcess({"OPENAI_BASE_URL": llm.base_url, "OPENAI_API_KEY": "test-key"}).wait_ready()
    try:
        llm.script(chunks=reply)
        page = browser.new_page()
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        page.goto(process.url)
        new_and_start(page)
        page.fill("#message textarea", asked)
        click_expecting(page, "#talk-btn", "The LLM answered", 15_000)
        bubbles = page.locator("#transcript [data-testid=user], #transcript [data-testid=bot]")
        expect(bubbles).to_have_count(2, timeout=10_000)
        assert [bubbles.nth(i).inner_text() for i in range(2)] == [asked, "".join(reply).strip()]
        made = page.locator("#transcript .message-content *")  # what the messages turned into
        tags = {made.nth(i).evaluate("e => e.tagName") for i in range(made.count())}
        assert tags <= {"SPAN"}, tags  # the text's own wrapper only: no img, style, a, div
        assert not [url for url in requested if url.startswith(bait)]
        assert page.locator("#status textarea").evaluate("e => getComputedStyle(e).backgroundColor") != \
            "rgb(255, 0, 0)"
        page.close()
    finally:
        process.stop()
        llm.stop()
