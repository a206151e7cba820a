"""TURN: credentials fetched from a loopback credentials service and renewed in place,
a provider that cannot be reached, and a real relay-only stream through coturn in
Chromium (getStats shows the selected candidate pair is a relay)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from avatar_core.server.turn import IceConfiguration
from avatar_core.settings import Settings, SettingsError, load_settings
from tests.support.app_process import AppProcess, free_port

HF_TOKEN = "hf_test_token_not_secret_123"


class CredentialsService:
    """Speaks HTTP like turn.fastrtc.org: GET ?ttl= with a Bearer token -> {"iceServers": [...]}.
    Each answer has a new user name, so a renewal can be seen."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[dict] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                service.requests.append({"path": self.path, "authorization": self.headers.get("Authorization")})
                body = json.dumps({"iceServers": [{"urls": ["turn:127.0.0.1:3478"],
                                                   "username": f"user-{len(service.requests)}",
                                                   "credential": "pw"}]}).encode()
                self.send_response(service.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/credentials"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def credentials():
    service = CredentialsService()
    yield service
    service.close()


def settings(**values) -> Settings:
    return Settings(_env_file=None, **values)


def test_fetched_credentials_are_renewed_in_the_same_dict(credentials):
    ice = IceConfiguration(settings(turn_provider="hf", hf_token=HF_TOKEN, turn_credentials_url=credentials.url,
                                    turn_ttl_s=2, turn_force_relay=True))
    configuration = ice.rtc_configuration
    ice.start()
    try:
        assert configuration["iceServers"][0]["username"] == "user-1"
        assert configuration["iceTransportPolicy"] == "relay"
        assert credentials.requests[0] == {"path": "/credentials?ttl=2", "authorization": f"Bearer {HF_TOKEN}"}
        deadline = time.monotonic() + 10
        while configuration["iceServers"][0]["username"] == "user-1" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert configuration["iceServers"][0]["username"] != "user-1"  # renewed at half the TTL
        assert ice.rtc_configuration is configuration
    finally:
        ice.stop()


@pytest.mark.parametrize(("status", "hint"), [(401, "check HF_TOKEN"), (500, "try again later")])
def test_a_refusing_credentials_service_gives_one_clear_reason(credentials, status, hint):
    credentials.status = status
    ice = IceConfiguration(settings(turn_provider="hf", hf_token=HF_TOKEN, turn_credentials_url=credentials.url))
    assert not ice.refresh()
    assert ice.last_error == f"the credentials service answered HTTP {status} ({hint})"
    assert ice.rtc_configuration == {}


def test_turn_settings_name_what_is_missing(monkeypatch):
    for name, value in {"TURN_PROVIDER": "custom", "TURN_FORCE_RELAY": "1"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match="TURN_PROVIDER=custom needs TURN_URLS"):
        load_settings()
    monkeypatch.setenv("TURN_PROVIDER", "none")
    with pytest.raises(SettingsError, match="TURN_FORCE_RELAY=1 needs a TURN server"):
        load_settings()
    monkeypatch.setenv("TURN_PROVIDER", "cloudflare")
    with pytest.raises(SettingsError, match="CLOUDFLARE_TURN_KEY_ID and CLOUDFLARE_TURN_KEY_API_TOKEN"):
        load_settings()


def page_ice_servers(app: AppProcess) -> list[dict]:
    config = httpx.get(app.url + "/config", timeout=10).json()
    props = [c["props"] for c in config["components"] if c["props"].get("elem_id") in ("avatar-video", "avatar-audio")]
    assert len(props) == 2
    return [p["rtc_configuration"]["iceServers"][0] for p in props]


@pytest.mark.integration
def test_the_page_gets_renewed_credentials(credentials):
    app = AppProcess({"TURN_PROVIDER": "hf", "HF_TOKEN": HF_TOKEN, "TURN_CREDENTIALS_URL": credentials.url,
                      "TURN_TTL_S": "2"}).wait_ready()
    try:
        first = page_ice_servers(app)
        assert first[0] == first[1] and first[0]["username"].startswith("user-")
        deadline = time.monotonic() + 10
        while page_ice_servers(app)[0]["username"] == first[0]["username"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert page_ice_servers(app)[0]["username"] != first[0]["username"]
        assert HF_TOKEN not in app.output()
    finally:
        app.stop()


@pytest.mark.integration
def test_an_unreachable_turn_provider_is_one_log_line_and_the_app_serves():
    closed_port = free_port()
    app = AppProcess({"TURN_PROVIDER": "hf", "HF_TOKEN": HF_TOKEN,
                      "TURN_CREDENTIALS_URL": f"http://127.0.0.1:{closed_port}/credentials"}).wait_ready()
    try:
        assert httpx.get(app.url + "/", timeout=10).status_code == 200
        lines = [line for line in app.output().splitlines() if "TURN (hf)" in line]
        assert any("could not get credentials: cannot reach the credentials service" in line for line in lines)
        assert HF_TOKEN not in app.output()
    finally:
        app.stop()


# --- a real relay: coturn on loopback, Chromium limited to relay candidates -------------------------
PC_RECORDER = """
window.__pcs = [];
const Original = window.RTCPeerConnection;
window.RTCPeerConnection = function (...args) { const pc = new Original(...args); window.__pcs.push(pc); return pc; };
window.RTCPeerConnection.prototype = Original.prototype;
"""
SELECTED_PAIRS = """async () => {
    const pairs = [];
    for (const pc of window.__pcs) {
        if (pc.connectionState !== 'connected') continue;
        const stats = await pc.getStats(); const byId = new Map(); stats.forEach(s => byId.set(s.id, s));
        for (const s of byId.values()) {
            if (s.type !== 'transport' || !s.selectedCandidatePairId) continue;
            const pair = byId.get(s.selectedCandidatePairId);
            const local = byId.get(pair.localCandidateId), remote = byId.get(pair.remoteCandidateId);
            pairs.push({local: local.candidateType, relayProtocol: local.relayProtocol || null,
                        url: local.url || null, remote: remote.candidateType, received: pair.bytesReceived});
        }
    }
    return pairs;
}"""


@pytest.fixture(scope="module")
def turn_server():
    from tests.support.turn_server import TurnServer

    server = TurnServer()
    yield server
    server.stop()


def relay_app(turn_server, password: str) -> AppProcess:
    return AppProcess({"TURN_PROVIDER": "custom", "TURN_URLS": turn_server.url, "TURN_USERNAME": "avatar",
                       "TURN_CREDENTIAL": password, "TURN_FORCE_RELAY": "1"}).wait_ready()


@pytest.mark.browser
@pytest.mark.integration
def test_relay_only_stream_plays_through_coturn(turn_server, browser):
    from tests.support.chromium import new_and_start, playing

    app = relay_app(turn_server, turn_server.password)
    try:
        page = browser.new_page()
        page.add_init_script(PC_RECORDER)
        page.goto(app.url)
        new_and_start(page)
        before, after = playing(page, "#avatar-video video")
        assert after["width"] == 640 and after["time"] > before["time"]
        pairs = page.evaluate(SELECTED_PAIRS)
        assert len(pairs) == 2, pairs  # the video and the audio connection
        for pair in pairs:
            assert pair["local"] == "relay" and pair["relayProtocol"] == "udp", pairs
            assert pair["url"].startswith(f"turn:127.0.0.1:{turn_server.port}"), pairs
            assert pair["received"] > 0
        page.close()
    finally:
        app.stop()


@pytest.mark.browser
@pytest.mark.integration
def test_relay_only_with_a_wrong_password_says_what_to_do_in_the_page(turn_server, browser):
    from tests.support.chromium import expect_status, status_mark
    from tests.support.log_lines import session_closed

    app = relay_app(turn_server, "not-the-password")
    try:
        page = browser.new_page()
        page.goto(app.url)
        page.click("#new-btn")
        expect_status(page, "created", 30_000)
        page.click("#start-btn")
        expect_status(page, "the stream has not connected after 8 s", 30_000)
        expect_status(page, "Relay-only mode is on (TURN_FORCE_RELAY)")
        assert "Stream connected" not in page.locator("#status textarea").input_value()
        mark = status_mark(page)
        page.click("#close-btn")
        expect_status(page, session_closed("closed by you"), after=mark)
        page.close()
    finally:
        app.stop()
