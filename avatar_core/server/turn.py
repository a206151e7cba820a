"""The browsers' ICE configuration: which TURN relay they may use to reach this server.

WebRTC from a server (a Hugging Face Space, a cloud VM) to a browser behind NAT, a
firewall or a VPN usually needs a TURN relay. fastrtc 0.0.34 breaks receive mode when
`rtc_configuration` is a callable, so the configuration is one static dict that both
WebRTC components (and so the page config and fastrtc's `turn` endpoint) refer to;
fetched credentials are written into it in place and renewed at half their lifetime.

The credential requests are written here rather than taken from fastrtc's helpers,
which read the environment themselves, take no address (so cannot be tested on
loopback) and put the provider's reply into their errors.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import httpx

from ..settings import Settings

log = logging.getLogger(__name__)

HF_CREDENTIALS_URL = "https://turn.fastrtc.org/credentials"
CLOUDFLARE_CREDENTIALS_URL = "https://rtc.live.cloudflare.com/v1/turn/keys/{key_id}/credentials/generate-ice-servers"
RETRY_S = 60.0
REQUEST_TIMEOUT_S = 10.0
HINTS = {  # what to check, per provider, when credentials cannot be had
    401: {"hf": "check HF_TOKEN", "cloudflare": "check CLOUDFLARE_TURN_KEY_API_TOKEN"},
    403: {"hf": "check HF_TOKEN", "cloudflare": "check CLOUDFLARE_TURN_KEY_API_TOKEN"},
    404: {"hf": "check TURN_CREDENTIALS_URL", "cloudflare": "check CLOUDFLARE_TURN_KEY_ID"},
}


class TurnError(Exception):
    """Credentials could not be had; the message says why, without any secret."""


def ice_servers(reply: Any) -> list[dict[str, Any]]:
    """The `iceServers` list from a provider's reply (Cloudflare may send one object)."""
    servers = reply.get("iceServers") if isinstance(reply, dict) else None
    if isinstance(servers, dict):
        servers = [servers]
    if not isinstance(servers, list) or not servers or not all(isinstance(s, dict) and s.get("urls")
                                                                for s in servers):
        raise TurnError("the reply has no usable iceServers")
    return servers


class IceConfiguration:
    """`rtc_configuration` for the page's WebRTC components, kept current."""

    def __init__(self, settings: Settings) -> None:
        self.provider = settings.turn_provider
        self.force_relay = settings.turn_force_relay
        self._settings = settings
        self._ttl_s = settings.turn_ttl_s
        # one dict for the life of the app; only its "iceServers" value is replaced, in one
        # assignment, so a page config copied from another thread never sees it half-made
        self.rtc_configuration: dict[str, Any] = {"iceTransportPolicy": "relay"} if self.force_relay else {}
        self.last_error: str | None = None
        self._listeners: list[Callable[[list[dict[str, Any]]], None]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def fetched(self) -> bool:
        return self.provider in ("hf", "cloudflare")

    def start(self) -> None:
        """Fill the configuration (one attempt: the app serves either way), then keep
        fetched credentials renewed in a background thread."""
        if self.provider == "custom":
            self._apply(self._custom_servers())
        elif self.fetched:
            self.refresh()
            self._thread = threading.Thread(target=self._renew, name="turn-credentials", daemon=True)
            self._thread.start()
        if self.provider != "none":
            relay = " (relay only: TURN_FORCE_RELAY)" if self.force_relay else ""
            state = "ready" if self.rtc_configuration.get("iceServers") else "not available yet"
            log.info("TURN (%s): %s%s", self.provider, state, relay)

    def stop(self) -> None:
        self._stop.set()

    def refresh(self) -> bool:
        try:
            self._apply(self._fetch())
        except TurnError as exc:
            self.last_error = str(exc)
            log.warning("TURN (%s): could not get credentials: %s. Viewers behind NAT or a VPN may not connect; "
                        "retrying in %.0f s.", self.provider, exc, RETRY_S)
            return False
        self.last_error = None
        return True

    def _renew(self) -> None:
        wait = self._ttl_s / 2 if not self.last_error else RETRY_S
        while not self._stop.wait(wait):
            try:
                wait = self._ttl_s / 2 if self.refresh() else RETRY_S
            except Exception:  # the renewal must outlive any surprise, and say so
                log.exception("TURN (%s): renewing credentials failed; retrying in %.0f s", self.provider, RETRY_S)
                wait = RETRY_S

    @property
    def servers(self) -> list[dict[str, Any]]:
        """The ICE servers configured now (none: host candidates only, no public STUN)."""
        return list(self.rtc_configuration.get("iceServers", []))

    def follow(self, listener: Callable[[list[dict[str, Any]]], None]) -> None:
        """Call `listener` with the servers now and whenever they are renewed."""
        self._listeners.append(listener)
        listener(self.servers)

    def _apply(self, servers: list[dict[str, Any]]) -> None:
        # in place: Gradio's page config and fastrtc's `turn` endpoint hold this same dict
        self.rtc_configuration["iceServers"] = servers
        for listener in self._listeners:
            listener(servers)

    def _custom_servers(self) -> list[dict[str, Any]]:
        s = self._settings
        server: dict[str, Any] = {"urls": [url.strip() for url in s.turn_urls.split(",") if url.strip()]}
        if s.turn_username:
            server["username"] = s.turn_username
        if s.turn_credential is not None:
            server["credential"] = s.turn_credential.get_secret_value()
        return [server]

    def _fetch(self) -> list[dict[str, Any]]:
        s = self._settings
        try:
            if self.provider == "hf":
                token = s.hf_token.get_secret_value() if s.hf_token else ""
                reply = httpx.get(s.turn_credentials_url or HF_CREDENTIALS_URL, params={"ttl": self._ttl_s},
                                  headers={"Authorization": f"Bearer {token}"}, timeout=REQUEST_TIMEOUT_S)
            else:
                token = s.cloudflare_turn_key_api_token.get_secret_value() if s.cloudflare_turn_key_api_token else ""
                url = s.turn_credentials_url or CLOUDFLARE_CREDENTIALS_URL.format(key_id=s.cloudflare_turn_key_id)
                reply = httpx.post(url, json={"ttl": self._ttl_s}, headers={"Authorization": f"Bearer {token}"},
                                   timeout=REQUEST_TIMEOUT_S)
        except httpx.TimeoutException:
            raise TurnError(f"no answer within {REQUEST_TIMEOUT_S:.0f} s") from None
        except httpx.HTTPError as exc:
            raise TurnError(f"cannot reach the credentials service ({type(exc).__name__})") from None
        if not reply.is_success:
            hint = HINTS.get(reply.status_code, {}).get(self.provider, "try again later")
            raise TurnError(f"the credentials service answered HTTP {reply.status_code} ({hint})")
        try:
            return ice_servers(reply.json())
        except ValueError:
            raise TurnError("the credentials service sent something that is not JSON") from None

    def connection_help(self) -> str:
        """What to tell someone whose stream does not connect, given this configuration."""
        people = "If you are on a VPN, a company network or a strict firewall, try without the VPN or another network."
        if self.force_relay:
            server = ("Relay-only mode is on (TURN_FORCE_RELAY), so the stream can only come through the TURN "
                      "server: check that it is reachable and that its credentials are right")
        elif self.provider == "none":
            server = ("This server has no TURN relay, which viewers behind NAT and apps on Hugging Face Spaces "
                      "need: whoever runs it can set TURN_PROVIDER (see the README)")
        else:
            server = (f"The TURN relay ({self.provider}) did not get the stream through: whoever runs this "
                      "server can check its settings and the log")
        return f"{people} {server}. Then click Close, New and Start again."
