"""An async client for HeyGen's streaming API (v1 endpoints), one httpx client with
timeouts. The key stays here: it is sent only to HEYGEN_BASE_URL."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from ..base import Quality
from .errors import HeyGenError, ReplyLostError, RequestTimeoutError, ServerError, classify


@dataclass(frozen=True)
class NewSession:
    session_id: str
    sdp: dict[str, str] | None  # v1: the server's offer {"type": "offer", "sdp": ...}
    ice_servers: list[dict[str, Any]] = field(default_factory=list)
    duration_limit_s: float | None = None
    url: str | None = None  # v2 (LiveKit) room
    access_token: str | None = None


@dataclass(frozen=True)
class Task:
    task_id: str
    duration_ms: float | None


class HeyGenClient:
    def __init__(self, api_key: str, base_url: str, timeout_s: float,
                 extra_headers: dict[str, str] | None = None, bearer_token: str | None = None) -> None:
        """`bearer_token` (from create_token) replaces the key, as HeyGen's SDK does;
        `extra_headers` is for the local server's fault injection."""
        auth = {"Authorization": f"Bearer {bearer_token}"} if bearer_token else {"X-Api-Key": api_key}
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), headers={**auth, **(extra_headers or {})},
                                       timeout=httpx.Timeout(timeout_s, connect=5.0))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, body: dict[str, Any] | None = None,
                       headers: dict[str, str] | None = None) -> Any:
        try:
            reply = await self._http.request(method, path, json=body, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # the request was never sent
            raise ServerError(f"cannot reach HeyGen ({type(exc).__name__})") from None
        except httpx.TimeoutException:  # sent: HeyGen may have done it anyway
            raise RequestTimeoutError() from None
        except httpx.HTTPError as exc:  # sent, and the connection broke before the reply
            raise ReplyLostError(f"the connection to HeyGen broke ({type(exc).__name__})") from None
        try:
            payload = reply.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict):  # an HTML page from a proxy or a wrong HEYGEN_BASE_URL
            if reply.is_success:
                raise ServerError(f"not a HeyGen reply (HTTP {reply.status_code}); check HEYGEN_BASE_URL")
            raise classify(reply.status_code, None, "")
        code, message = payload.get("code"), str(payload.get("message") or payload.get("error") or "")
        enveloped = "data" in payload or code == 100
        if not (reply.is_success and enveloped and code in (None, 100) and not payload.get("error")):
            raise classify(reply.status_code, code if isinstance(code, int) else None, message)
        return payload.get("data")

    # --- endpoints -----------------------------------------------------------------------
    async def create_token(self) -> str:
        data = await self._request("POST", "/v1/streaming.create_token", {})
        return str(data["token"])

    async def new_session(self, quality: Quality, avatar_id: str, voice_id: str | None = None,
                          rate: float | None = None, emotion: str | None = None,
                          knowledge_base: str | None = None, language: str | None = None,
                          activity_idle_timeout_s: int | None = None, video_encoding: str = "VP8",
                          version: str | None = None) -> NewSession:
        voice = {k: v for k, v in {"voice_id": voice_id, "rate": rate, "emotion": emotion}.items() if v is not None}
        body: dict[str, Any] = {"quality": quality, "avatar_id": avatar_id, "avatar_name": avatar_id,
                                "video_encoding": video_encoding}
        optional = {"voice": voice or None, "knowledge_base": knowledge_base, "language": language,
                    "activity_idle_timeout": activity_idle_timeout_s, "version": version}
        body.update({k: v for k, v in optional.items() if v is not None})
        data = await self._request("POST", "/v1/streaming.new", body)
        if not isinstance(data, dict) or "session_id" not in data:
            raise HeyGenError("streaming.new returned no session")
        return NewSession(session_id=data["session_id"], sdp=data.get("sdp"),
                          ice_servers=data.get("ice_servers2") or data.get("ice_servers") or [],
                          duration_limit_s=data.get("session_duration_limit"),
                          url=data.get("url"), access_token=data.get("access_token"))

    async def start(self, session_id: str, answer_sdp: str | None = None) -> None:
        body: dict[str, Any] = {"session_id": session_id}
        if answer_sdp is not None:
            body["sdp"] = {"type": "answer", "sdp": answer_sdp}
        await self._request("POST", "/v1/streaming.start", body)

    async def ice(self, session_id: str, candidate: dict[str, Any]) -> None:
        await self._request("POST", "/v1/streaming.ice", {"session_id": session_id, "candidate": candidate})

    async def task(self, session_id: str, text: str, task_type: Literal["repeat", "talk"] = "repeat",
                   task_mode: Literal["sync", "async"] = "async") -> Task:
        data = await self._request("POST", "/v1/streaming.task", {"session_id": session_id, "text": text,
                                                                  "task_type": task_type, "task_mode": task_mode})
        data = data or {}
        return Task(task_id=str(data.get("task_id", "")), duration_ms=data.get("duration_ms"))

    async def interrupt(self, session_id: str) -> None:
        await self._request("POST", "/v1/streaming.interrupt", {"session_id": session_id})

    async def keep_alive(self, session_id: str) -> None:
        await self._request("POST", "/v1/streaming.keep_alive", {"session_id": session_id})

    async def stop(self, session_id: str) -> None:
        await self._request("POST", "/v1/streaming.stop", {"session_id": session_id})

    async def list_sessions(self) -> list[dict[str, Any]]:
        data = await self._request("GET", "/v1/streaming.list")
        return list((data or {}).get("sessions", []))

    async def list_avatars(self) -> list[dict[str, Any]]:
        data = await self._request("GET", "/v1/streaming/avatar.list")
        if isinstance(data, dict):  # some accounts see {"avatars": [...]}
            data = data.get("avatars", [])
        return list(data or [])

    async def list_voices(self) -> list[dict[str, Any]]:
        data = await self._request("GET", "/v2/voices")
        return list((data or {}).get("voices", []))

    async def close_sessions(self, keep: frozenset[str] = frozenset()) -> int:
        """The "close my open sessions" action: list, then stop each one not in `keep`.
        Returns how many were stopped."""
        sessions = [str(s["session_id"]) for s in await self.list_sessions() if str(s.get("session_id")) not in keep]
        for session_id in sessions:
            with contextlib.suppress(HeyGenError):  # already gone: that is what we wanted
                await self.stop(session_id)
        return len(sessions)
