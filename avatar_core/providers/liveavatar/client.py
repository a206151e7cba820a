"""An async client for LiveAvatar's REST API (api.liveavatar.com), one httpx client with
timeouts. The key stays here: it is sent only to LIVEAVATAR_BASE_URL; a session token
only with that session's own calls."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import httpx

from .errors import (
    AvatarNotFoundError,
    LiveAvatarError,
    NotLiveAvatarError,
    ReplyLostError,
    RequestTimeoutError,
    SessionClosedError,
    UnreachableError,
    classify,
)

Mode = Literal["FULL", "LITE"]
MAX_LIST_PAGES = 10  # of 100 avatars each: enough for any dropdown


@dataclass(frozen=True)
class SessionToken:
    session_id: str
    session_token: str


@dataclass(frozen=True)
class StartedSession:
    session_id: str
    livekit_url: str
    livekit_client_token: str
    ws_url: str | None = None  # LITE: the WebSocket our voice goes over
    max_session_duration_s: float | None = None


class LiveAvatarClient:
    def __init__(self, api_key: str, base_url: str, timeout_s: float,
                 extra_headers: dict[str, str] | None = None) -> None:
        """`extra_headers` is for the local stand-in's fault injection."""
        self._key = api_key
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), headers=extra_headers or {},
                                       timeout=httpx.Timeout(timeout_s, connect=5.0))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, body: dict[str, Any] | None = None,
                       token: str | None = None, params: dict[str, Any] | None = None) -> Any:
        """`token`: a session token (Bearer) instead of the key."""
        auth = {"Authorization": f"Bearer {token}"} if token else {"X-API-KEY": self._key}
        try:
            reply = await self._http.request(method, path, json=body, headers=auth, params=params)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # the request was never sent
            raise UnreachableError(f"cannot reach LiveAvatar ({type(exc).__name__})") from None
        except httpx.TimeoutException:  # sent: LiveAvatar may have done it anyway
            raise RequestTimeoutError() from None
        except httpx.HTTPError as exc:  # sent, and the connection broke before the reply
            raise ReplyLostError(f"the connection to LiveAvatar broke ({type(exc).__name__})") from None
        try:
            payload = reply.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict):  # an HTML page from a proxy or a wrong LIVEAVATAR_BASE_URL
            if reply.is_success:
                raise NotLiveAvatarError(f"not a LiveAvatar reply (HTTP {reply.status_code})")
            raise classify(reply.status_code, None, "")
        code = payload.get("code")
        message = str(payload.get("message") or payload.get("error") or payload.get("detail") or "")
        refused = code not in (None, 100, 200, 201) or bool(payload.get("error"))
        if not reply.is_success or refused:
            raise classify(reply.status_code, code if isinstance(code, int) else None, message)
        # the documented envelope is {"code": 100, "data": {...}}; some replies put the fields at the top
        data = payload.get("data", payload)
        return data if data is not None else {}

    # --- sessions ------------------------------------------------------------------------
    async def create_token(self, mode: Mode, avatar_id: str, voice_id: str | None = None,
                           is_sandbox: bool = False, language: str | None = None,
                           context_id: str | None = None) -> SessionToken:
        body: dict[str, Any] = {"mode": mode, "avatar_id": avatar_id, "is_sandbox": is_sandbox}
        if mode == "FULL":
            persona = {"voice_id": voice_id, "context_id": context_id, "language": language}
            body["avatar_persona"] = {k: v for k, v in persona.items() if v}
        data = await self._request("POST", "/v1/sessions/token", body)
        session_id, token = _field(data, "session_id"), _field(data, "session_token")
        return SessionToken(session_id, token)

    async def start(self, token: SessionToken) -> StartedSession:
        data = await self._request("POST", "/v1/sessions/start", token=token.session_token)
        duration = data.get("max_session_duration") if isinstance(data, dict) else None
        return StartedSession(session_id=str(data.get("session_id") or token.session_id),
                              livekit_url=_field(data, "livekit_url"),
                              livekit_client_token=_field(data, "livekit_client_token"),
                              ws_url=data.get("ws_url") or None,
                              max_session_duration_s=float(duration) if isinstance(duration, int | float) else None)

    async def stop(self, session_id: str, token: str | None = None) -> None:
        await self._session_call("/v1/sessions/stop", session_id, token)

    async def keep_alive(self, session_id: str, token: str | None = None) -> None:
        await self._session_call("/v1/sessions/keep-alive", session_id, token)

    async def _session_call(self, path: str, session_id: str, token: str | None) -> None:
        try:
            await self._request("POST", path, {"session_id": session_id}, token=token)
        except AvatarNotFoundError as exc:  # a 404 for a session's own call: the session is gone
            raise SessionClosedError(exc.detail, exc.status, exc.code) from None

    async def list_sessions(self) -> list[dict[str, Any]]:
        data = await self._request("GET", "/v1/sessions")
        return _results(data, "sessions")

    # --- lists ---------------------------------------------------------------------------
    async def list_avatars(self, public: bool) -> list[dict[str, Any]]:
        path = "/v1/avatars/public" if public else "/v1/avatars"
        avatars: list[dict[str, Any]] = []
        for page in range(1, MAX_LIST_PAGES + 1):
            data = await self._request("GET", path, params={"page": page, "page_size": 100})
            avatars += _results(data, "avatars")
            if not (isinstance(data, dict) and data.get("next")):
                break
        return avatars

    async def list_voices(self) -> list[dict[str, Any]]:
        return _results(await self._request("GET", "/v1/voices"), "voices")


def _field(data: Any, name: str) -> str:
    value = data.get(name) if isinstance(data, dict) else None
    if not isinstance(value, str) or not value:
        raise LiveAvatarError(f"LiveAvatar's reply has no {name}")
    return value


def _results(data: Any, name: str) -> list[dict[str, Any]]:
    """A list reply: {"results": [...]}, {name: [...]} or the list itself."""
    if isinstance(data, dict):
        data = data.get("results", data.get(name, []))
    return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []
