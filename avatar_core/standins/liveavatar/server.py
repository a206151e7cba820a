"""A LiveAvatar-compatible server on loopback, for building and testing without credits:

    python -m avatar_core.standins.liveavatar.server --port 8791 --api-key local-key

REST as LiveAvatar documents it (../shared/reference/liveavatar-api.md): session token
(X-API-KEY) -> start (Bearer session token) -> stop / keep-alive; the key's sessions;
public and own avatars, voices; the {"code": 100, "data": ...} envelope, its errors and
limits (concurrency, a 5-minute idle timeout reset by keep-alive, a duration limit).
Start opens a room on this same server that the `livekit` SDK joins (room.py), with the
offline avatar on green as its participant, behaving as LiveAvatar's agent (agent.py).
Faults for every request with --fault or POST /_local/fault: 500, 401, 402, 429, slow,
room-silent (rooms never offer media); POST /_local/drop {"what": "room" | "socket"} cuts
every open room's connections, or LITE's sockets.
`GET /_local/stats` counts open sessions so tests can prove nothing leaks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import secrets
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ...providers.local.face import LOOKS
from ...providers.local.speech import default_catalog
from ..cors import BROWSER_CLIENTS
from ..heygen.media import SPEECH_STARTS
from .agent import Rooms
from .session import LocalSession

FAULTS = ("500", "401", "402", "429", "slow", "room-silent")
MODES = ("FULL", "LITE")
log = logging.getLogger(__name__)


@dataclass
class LocalConfig:
    api_key: str = "local-key"
    max_sessions: int = 3
    idle_timeout_s: float = 300.0  # LiveAvatar: 5 minutes without a keep-alive
    duration_limit_s: float = 1200.0
    fault: str | None = None
    slow_s: float = 3.0


class ApiError(Exception):
    def __init__(self, status: int, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code if code is not None else status


def _ok(data: Any = None, status: int = 200) -> JSONResponse:
    return JSONResponse({"code": 100, "message": "success", "data": data}, status_code=status)


Handler = Callable[[dict[str, Any], LocalSession | None, str | None], Awaitable[JSONResponse]]

class LocalLiveAvatar:
    def __init__(self, config: LocalConfig, public_url: str) -> None:
        """`public_url`: this server's address as clients reach it (http://host:port)."""
        self.config = config
        self.sessions: dict[str, LocalSession] = {}
        self.created_total = 0
        self.issued_secrets: deque[str] = deque(maxlen=200)  # session and socket tokens, for leak tests
        self.rooms = Rooms(public_url.replace("http", "ws", 1), self._touch, lambda: self.config.fault)
        self._reaper: asyncio.Task[None] | None = None
        routes = [
            Route("/v1/sessions/token", self.token, methods=["POST"]),
            Route("/v1/sessions/start", self.start, methods=["POST"]),
            Route("/v1/sessions/stop", self.stop, methods=["POST"]),
            Route("/v1/sessions/keep-alive", self.keep_alive, methods=["POST"]),
            Route("/v1/sessions", self.list_sessions, methods=["GET"]),
            Route("/v1/avatars/public", self.public_avatars, methods=["GET"]),
            Route("/v1/avatars", self.own_avatars, methods=["GET"]),
            Route("/v1/voices", self.voices, methods=["GET"]),
            Route("/_local/stats", self.stats, methods=["GET"]),
            Route("/_local/fault", self.set_fault, methods=["POST"]),
            Route("/_local/drop", self.drop, methods=["POST"]),
            *self.rooms.routes(),
        ]
        self.app = Starlette(routes=routes, lifespan=self._lifespan, middleware=BROWSER_CLIENTS)

    @contextlib.asynccontextmanager
    async def _lifespan(self, _app: Starlette):
        # as the real service, the first Repeat must not wait for a voice model to load
        await asyncio.to_thread(default_catalog().warm_up)
        self._reaper = asyncio.create_task(self._reap_forever())
        yield
        self._reaper.cancel()
        for session_id in list(self.sessions):
            await self._close(session_id)

    # --- request plumbing ----------------------------------------------------------------
    async def _handle(self, request: Request, handler: Handler, auth: str = "key") -> JSONResponse:
        """auth: "key" (X-API-KEY), "token" (a session's Bearer token), "either", "none"."""
        fault = self.config.fault
        try:
            if fault == "500":
                raise ApiError(500, "Internal server error")
            if fault == "401":
                raise ApiError(401, "Invalid API key")
            if fault == "402":
                raise ApiError(402, "Insufficient credits")
            if fault == "429":
                raise ApiError(429, "Concurrent session limit reached")
            body: dict[str, Any] = {}
            if request.method == "POST":
                with contextlib.suppress(ValueError):
                    body = await request.json()
                if not isinstance(body, dict):
                    raise ApiError(400, "body must be a JSON object")
            session = self._authorize(request, auth)
            response = await handler(body, session, fault)
            if fault == "slow":  # the work is done, the reply is late (a client may give up on it)
                await asyncio.sleep(self.config.slow_s)
            return response
        except ApiError as exc:
            return JSONResponse({"code": exc.code, "message": exc.message, "data": None}, status_code=exc.status)

    def _authorize(self, request: Request, auth: str) -> LocalSession | None:
        """None for the key; the session whose token was given."""
        if auth == "none":
            return None
        key_ok = secrets.compare_digest(request.headers.get("x-api-key", ""), self.config.api_key)
        if key_ok and auth in ("key", "either"):
            return None
        bearer = request.headers.get("authorization", "")
        token = bearer[7:].strip() if bearer.lower().startswith("bearer ") else ""
        if token and auth in ("token", "either"):
            for session in self.sessions.values():
                if secrets.compare_digest(token, session.token):
                    return session
            raise ApiError(401, "Invalid or expired session token")
        raise ApiError(401, "Invalid API key" if auth != "token" else "A session token is required")

    def _session(self, body: dict[str, Any], by_token: LocalSession | None) -> LocalSession:
        session_id = str(body.get("session_id") or (by_token.session_id if by_token else ""))
        session = self.sessions.get(session_id)
        if session is None:
            raise ApiError(404, f"Session not found or already closed: {session_id[:40]}")
        if by_token is not None and by_token is not session:
            raise ApiError(401, "This token belongs to another session")
        session.last_activity = time.monotonic()
        return session

    # --- sessions ------------------------------------------------------------------------
    async def token(self, request: Request) -> JSONResponse:
        async def handler(body: dict[str, Any], _session: LocalSession | None, _fault: str | None) -> JSONResponse:
            mode = str(body.get("mode") or "FULL").upper()
            if mode == "CUSTOM":  # LITE's former name
                mode = "LITE"
            if mode not in MODES:
                raise ApiError(400, f"mode must be FULL or LITE, not {mode[:20]!r}")
            if len(self.sessions) >= self.config.max_sessions:
                raise ApiError(429, "Concurrent session limit reached")
            avatar_id = str(body.get("avatar_id") or "")
            if avatar_id not in LOOKS:
                raise ApiError(404, "Avatar not found")
            persona = body.get("avatar_persona")
            persona = persona if isinstance(persona, dict) else {}
            voice_id = str(persona.get("voice_id") or default_catalog().default_id)
            if voice_id not in default_catalog().voices:
                raise ApiError(404, "Voice not found")
            session = LocalSession(uuid.uuid4().hex, secrets.token_urlsafe(24), mode, avatar_id, voice_id,
                                   bool(body.get("is_sandbox")))
            self.sessions[session.session_id] = session
            self.created_total += 1
            self.issued_secrets.append(session.token)
            return _ok({"session_id": session.session_id, "session_token": session.token})

        return await self._handle(request, handler)

    async def start(self, request: Request) -> JSONResponse:
        async def handler(body: dict[str, Any], by_token: LocalSession | None, _fault: str | None) -> JSONResponse:
            session = self._session(body, by_token)
            if session.started:
                raise ApiError(400, "Session already started")
            room = await self.rooms.open(session)
            session.started = True
            if "ws_url" in room:
                self.issued_secrets.append(room["ws_url"].rsplit("token=", 1)[-1])
            return _ok({"session_id": session.session_id, **room,
                        "max_session_duration": self.config.duration_limit_s}, status=201)

        return await self._handle(request, handler, auth="token")

    async def stop(self, request: Request) -> JSONResponse:
        async def handler(body: dict[str, Any], by_token: LocalSession | None, _fault: str | None) -> JSONResponse:
            session = self._session(body, by_token)
            await self._close(session.session_id)
            return _ok({"session_id": session.session_id, "status": "closed"})

        return await self._handle(request, handler, auth="either")

    async def keep_alive(self, request: Request) -> JSONResponse:
        async def handler(body: dict[str, Any], by_token: LocalSession | None, _fault: str | None) -> JSONResponse:
            self._session(body, by_token)  # touching it resets the idle timer
            return _ok({"status": "ok"})

        return await self._handle(request, handler, auth="either")

    async def list_sessions(self, request: Request) -> JSONResponse:
        async def handler(_body: dict[str, Any], _session: LocalSession | None, _fault: str | None) -> JSONResponse:
            return _ok({"results": [{"session_id": s.session_id, "status": s.status, "mode": s.mode,
                                     "created_at": s.created_at} for s in self.sessions.values()]})

        return await self._handle(request, handler)

    # --- lists ---------------------------------------------------------------------------
    def _avatars(self, request: Request) -> JSONResponse:
        voice = default_catalog().default_id
        try:
            page = max(1, int(request.query_params.get("page", "1")))
            size = min(100, max(1, int(request.query_params.get("page_size", "20"))))
        except ValueError:
            raise ApiError(400, "page and page_size must be numbers") from None
        looks = list(LOOKS.values())
        results = [{"id": look.look_id, "name": f"{look.label} (stand-in)", "type": "VIDEO", "status": "ACTIVE",
                    "preview_url": None, "is_1080p": False, "default_voice": {"id": voice, "name": voice}}
                   for look in looks[(page - 1) * size : page * size]]
        more = page * size < len(looks)
        return _ok({"count": len(looks), "results": results, "next": f"?page={page + 1}" if more else None,
                    "previous": f"?page={page - 1}" if page > 1 else None})

    async def public_avatars(self, request: Request) -> JSONResponse:
        async def handler(_body: dict[str, Any], _session: LocalSession | None, _fault: str | None) -> JSONResponse:
            return self._avatars(request)

        return await self._handle(request, handler, auth="none")

    async def own_avatars(self, request: Request) -> JSONResponse:
        async def handler(_body: dict[str, Any], _session: LocalSession | None, _fault: str | None) -> JSONResponse:
            return _ok({"count": 0, "results": [], "next": None, "previous": None})  # the stand-in's key owns none

        return await self._handle(request, handler)

    async def voices(self, request: Request) -> JSONResponse:
        async def handler(_body: dict[str, Any], _session: LocalSession | None, _fault: str | None) -> JSONResponse:
            return _ok({"results": [{"id": v.voice_id, "name": v.label, "language": "en"}
                                    for v in default_catalog().voices.values()]})

        return await self._handle(request, handler)

    # --- test hooks ----------------------------------------------------------------------
    async def stats(self, request: Request) -> JSONResponse:
        return JSONResponse({"open_sessions": len(self.sessions), "created_total": self.created_total,
                             "issued_secrets": list(self.issued_secrets), "speech_started_at": list(SPEECH_STARTS)})

    async def set_fault(self, request: Request) -> JSONResponse:
        """Tests switch the fault for every later request: {"fault": "500" | ... | null, "slow_s": 3}."""
        body = await request.json()
        fault = body.get("fault")
        if fault is not None and fault not in FAULTS:
            return JSONResponse({"error": f"fault must be one of {', '.join(FAULTS)} or null"}, status_code=400)
        self.config.fault = fault
        self.config.slow_s = float(body.get("slow_s", self.config.slow_s))
        return JSONResponse({"fault": fault, "slow_s": self.config.slow_s})

    async def drop(self, request: Request) -> JSONResponse:
        what = (await request.json()).get("what")
        if what not in ("room", "socket"):
            return JSONResponse({"error": "what must be room or socket"}, status_code=400)
        return JSONResponse({"dropped": await self.rooms.drop(what)})

    # --- lifecycle -----------------------------------------------------------------------
    def _touch(self, session_id: str) -> bool:
        """Activity in the room counts as keep-alive (LiveAvatar's agent sees it)."""
        session = self.sessions.get(session_id)
        if session is not None:
            session.last_activity = time.monotonic()
        return session is not None

    async def _close(self, session_id: str) -> None:
        session = self.sessions.pop(session_id, None)
        if session is not None and session.started:
            await self.rooms.close(session)

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            for s in list(self.sessions.values()):
                if now - s.last_activity > self.config.idle_timeout_s or now - s.created > self.config.duration_limit_s:
                    log.info("session %s closed by the stand-in (idle or duration limit)", s.session_id[:8])
                    await self._close(s.session_id)


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="LiveAvatar-compatible server on loopback")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument("--api-key", default=LocalConfig.api_key)
    parser.add_argument("--max-sessions", type=int, default=LocalConfig.max_sessions)
    parser.add_argument("--idle-timeout", type=float, default=LocalConfig.idle_timeout_s)
    parser.add_argument("--duration-limit", type=float, default=LocalConfig.duration_limit_s)
    parser.add_argument("--fault", choices=FAULTS, default=None, help="inject this fault into every request")
    args = parser.parse_args(argv)
    config = LocalConfig(api_key=args.api_key, max_sessions=args.max_sessions, idle_timeout_s=args.idle_timeout,
                         duration_limit_s=args.duration_limit, fault=args.fault)
    server = LocalLiveAvatar(config, f"http://{args.host}:{args.port}")
    uvicorn.run(server.app, host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
