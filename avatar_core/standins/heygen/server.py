"""A HeyGen-compatible streaming server on loopback, for building and testing
without credits or the trial's 3-session limit:

    python -m avatar_core.standins.heygen.server --port 8790 --api-key local-key

It speaks the v1 REST endpoints with HeyGen's envelope, error codes and limits
(shared/reference/heygen-streaming-api.md), accepts input loosely (avatar_id or
avatar_name, talk or chat, X-Api-Key or a Bearer token), and streams the offline
avatar over real WebRTC. Faults are injected per request with the `X-Fault` header
or for every request with --fault (or POST /_local/fault while running): 500, 401,
429, slow, drop-media, no-ice.
`GET /_local/stats` counts open sessions so tests can prove nothing leaks.

The faults' timings are flags, so tests on a loaded machine can leave room:
--drop-media-after SECONDS (default 1.5): drop-media stops the video and audio this
long after the first frame is sent; --slow-delay SECONDS (default 3): slow answers
this late (POST /_local/fault can change it with "slow_s").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ...events import SessionEvent, UpstreamMessage
from ...providers.base import MAX_TEXT_CHARS, QUALITY_SIZES, parse_quality
from ...providers.local.face import LOOKS
from ...providers.local.service import make_local_avatar
from ...providers.local.speech import default_catalog
from ..cors import BROWSER_CLIENTS
from .media import SPEECH_STARTS, AvatarPeer

FAULTS = ("500", "401", "429", "slow", "drop-media", "no-ice")
log = logging.getLogger(__name__)


class _LoggedEvents:
    """The stand-in's avatars have no session to report to: their events go to its log."""

    def emit(self, event: SessionEvent) -> None:
        if isinstance(event, UpstreamMessage):
            log.warning("avatar: %s", event.text)
EMOTIONS = {"excited", "serious", "friendly", "soothing", "broadcaster"}


@dataclass
class LocalConfig:
    api_key: str = "local-key"
    max_sessions: int = 3
    idle_timeout_s: float = 120.0
    duration_limit_s: float = 600.0
    fault: str | None = None
    slow_s: float = 3.0
    drop_media_after_s: float = 1.5


@dataclass
class LocalSession:
    session_id: str
    peer: AvatarPeer
    knowledge_base: str
    idle_timeout_s: float
    created: float = field(default_factory=time.monotonic)
    created_at: float = field(default_factory=time.time)  # what clients see: seconds since the epoch
    last_activity: float = field(default_factory=time.monotonic)
    started: bool = False

    @property
    def status(self) -> str:
        if self.peer.connected:
            return "connected"
        return "connecting" if self.started else "new"


class ApiError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _ok(data: Any = None) -> JSONResponse:
    return JSONResponse({"code": 100, "message": "success", "data": data})


class LocalHeyGen:
    def __init__(self, config: LocalConfig) -> None:
        self.config = config
        self.sessions: dict[str, LocalSession] = {}
        self.tokens: dict[str, str | None] = {}  # token -> the session it was spent on (None: unspent)
        self._reserved = 0  # sessions being built: they count against the limit already
        self.created_total = 0
        self._reaper: asyncio.Task[None] | None = None
        routes = [
            Route("/v1/streaming.create_token", self.create_token, methods=["POST"]),
            Route("/v1/streaming.new", self.new, methods=["POST"]),
            Route("/v1/streaming.start", self.start, methods=["POST"]),
            Route("/v1/streaming.ice", self.ice, methods=["POST"]),
            Route("/v1/streaming.task", self.task, methods=["POST"]),
            Route("/v1/streaming.interrupt", self.interrupt, methods=["POST"]),
            Route("/v1/streaming.keep_alive", self.keep_alive, methods=["POST"]),
            Route("/v1/streaming.stop", self.stop, methods=["POST"]),
            Route("/v1/streaming.list", self.list_sessions, methods=["GET"]),
            Route("/v1/streaming/avatar.list", self.list_avatars, methods=["GET"]),
            Route("/v2/voices", self.list_voices, methods=["GET"]),
            Route("/_local/stats", self.stats, methods=["GET"]),
            Route("/_local/fault", self.set_fault, methods=["POST"]),
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
    async def _handle(self, request: Request, handler, *, auth: bool = True) -> JSONResponse:
        fault = request.headers.get("x-fault") or self.config.fault
        try:
            if fault == "500":
                raise ApiError(500, 500, "Internal server error")
            if fault == "401":
                raise ApiError(401, 400112, "Unauthorized")
            if fault == "429":
                raise ApiError(429, 10007, "Concurrent limit reached")
            body: dict[str, Any] = {}
            if request.method == "POST":
                with contextlib.suppress(ValueError):
                    body = await request.json()
                if not isinstance(body, dict):
                    raise ApiError(400, 400, "body must be a JSON object")
            credential = self._authorize(request, body) if auth else None
            response = await handler(body, credential, fault)
            if fault == "slow":  # the work is done, the reply is late (a client may give up on it)
                await asyncio.sleep(self.config.slow_s)
            return response
        except ApiError as exc:
            return JSONResponse({"code": exc.code, "message": exc.message}, status_code=exc.status)

    def _authorize(self, request: Request, body: dict[str, Any]) -> str | None:
        """The key, or a token from create_token: returns the token (None for the key)."""
        if secrets.compare_digest(request.headers.get("x-api-key", ""), self.config.api_key):
            return None
        bearer = request.headers.get("authorization", "")
        token = bearer[7:].strip() if bearer.lower().startswith("bearer ") else ""
        if token in self.tokens:
            spent_on = self.tokens[token]
            if spent_on is not None and body.get("session_id") not in (None, spent_on):
                raise ApiError(401, 400112, "Unauthorized: token belongs to another session")
            return token
        raise ApiError(401, 400112, "Unauthorized")

    def _session(self, body: dict[str, Any]) -> LocalSession:
        session_id = str(body.get("session_id") or "")
        session = self.sessions.get(session_id)
        if session is None:
            raise ApiError(400, 10006, f"session not found: {session_id[:40]}")
        session.last_activity = time.monotonic()
        return session

    # --- endpoints -----------------------------------------------------------------------
    async def create_token(self, request: Request) -> JSONResponse:
        async def handler(_body, credential, _fault):
            if credential is not None:
                raise ApiError(401, 400112, "Unauthorized: a token cannot create tokens")
            token = secrets.token_urlsafe(24)
            self.tokens[token] = None
            return JSONResponse({"error": None, "data": {"token": token}})

        return await self._handle(request, handler)

    async def new(self, request: Request) -> JSONResponse:
        async def handler(body, token, fault):
            if token is not None and self.tokens[token] is not None:
                raise ApiError(401, 400112, "Unauthorized: token already used")
            if len(self.sessions) + self._reserved >= self.config.max_sessions:
                raise ApiError(400, 10007, "Concurrent limit reached")
            if body.get("version") == "v2":
                raise ApiError(400, 400, "version v2 (LiveKit) is not served by the local stand-in")
            avatar_id = str(body.get("avatar_id") or body.get("avatar_name") or "default")
            avatar_id = next(iter(LOOKS)) if avatar_id == "default" else avatar_id
            if avatar_id not in LOOKS:
                raise ApiError(400, 10013, "avatar not found")
            quality = str(body.get("quality") or "low").lower()
            voice = body.get("voice") if isinstance(body.get("voice"), dict) else {}
            voice_id = str(voice.get("voice_id") or default_catalog().default_id)
            emotion = str(voice.get("emotion") or "").lower()
            if quality not in QUALITY_SIZES or (emotion and emotion not in EMOTIONS):
                raise ApiError(400, 400, "invalid quality or emotion")
            if voice_id not in default_catalog().voices:
                raise ApiError(400, 400, "voice not found")
            idle = float(body.get("activity_idle_timeout") or self.config.idle_timeout_s)
            session_id = uuid.uuid4().hex
            if token is not None:
                self.tokens[token] = session_id  # spent before the first await: no second use slips in
            self._reserved += 1
            peer: AvatarPeer | None = None
            try:
                avatar = await asyncio.to_thread(make_local_avatar, avatar_id, voice_id, parse_quality(quality),
                                                 _LoggedEvents())
                peer = AvatarPeer(avatar, self.config.drop_media_after_s if fault == "drop-media" else None,
                                  break_ice=fault == "no-ice")
                sdp = await peer.offer()
            except BaseException:
                if peer is not None:
                    await peer.close()
                raise
            finally:
                self._reserved -= 1
            session = LocalSession(session_id, peer, str(body.get("knowledge_base") or ""),
                                   min(3600.0, max(1.0, idle)))
            self.sessions[session.session_id] = session
            self.created_total += 1
            return _ok({"session_id": session.session_id, "sdp": {"type": "offer", "sdp": sdp},
                        "ice_servers2": [], "ice_servers": [], "is_paid": False,
                        "session_duration_limit": self.config.duration_limit_s, "url": None, "access_token": None})

        return await self._handle(request, handler)

    async def start(self, request: Request) -> JSONResponse:
        async def handler(body, _token, _fault):
            session = self._session(body)
            sdp = body.get("sdp")
            answer = sdp.get("sdp") if isinstance(sdp, dict) else sdp
            if not isinstance(answer, str) or "v=0" not in answer:
                raise ApiError(400, 400, "sdp answer is required")
            if session.started:
                raise ApiError(400, 10002, "session state wrong: already started")
            await session.peer.accept_answer(answer)
            session.started = True
            return _ok()

        return await self._handle(request, handler)

    async def ice(self, request: Request) -> JSONResponse:
        async def handler(body, _token, fault):
            session = self._session(body)
            candidate = body.get("candidate")
            if isinstance(candidate, dict) and fault != "no-ice":
                with contextlib.suppress(Exception):  # a bad candidate is ignored, as browsers do
                    await session.peer.add_candidate(candidate)
            return _ok()

        return await self._handle(request, handler)

    async def task(self, request: Request) -> JSONResponse:
        async def handler(body, _token, _fault):
            session = self._session(body)
            text = str(body.get("text") or "").strip()
            task_type = str(body.get("task_type") or "repeat").lower()
            if not text:
                raise ApiError(400, 400, "text is required")
            if len(text) > MAX_TEXT_CHARS:
                raise ApiError(400, 400, f"text too long: {len(text)} characters, limit {MAX_TEXT_CHARS}")
            if task_type not in ("repeat", "talk", "chat"):
                raise ApiError(400, 400, "task_type must be repeat or talk")
            if task_type != "repeat":  # the stand-in has no LLM: a fixed, honest reply
                text = f"This is the local stand-in, not a language model. You said: {text}"
            task_id = uuid.uuid4().hex
            await session.peer.speak(task_id, text)
            duration_ms = 60.0 * len(text)  # an estimate; the stop event carries the real one
            if str(body.get("task_mode") or "async").lower() == "sync":
                while session.peer.avatar.busy and session.session_id in self.sessions:
                    await asyncio.sleep(0.05)
            return _ok({"task_id": task_id, "duration_ms": duration_ms})

        return await self._handle(request, handler)

    async def interrupt(self, request: Request) -> JSONResponse:
        async def handler(body, _token, _fault):
            await self._session(body).peer.interrupt()
            return _ok()

        return await self._handle(request, handler)

    async def keep_alive(self, request: Request) -> JSONResponse:
        async def handler(body, _token, _fault):
            self._session(body)  # touching it resets the idle timer
            return _ok()

        return await self._handle(request, handler)

    async def stop(self, request: Request) -> JSONResponse:
        async def handler(body, _token, _fault):
            session = self._session(body)
            await self._close(session.session_id)
            return _ok()

        return await self._handle(request, handler)

    async def list_sessions(self, request: Request) -> JSONResponse:
        async def handler(_body, _token, _fault):
            return _ok({"sessions": [{"session_id": s.session_id, "status": s.status, "created_at": s.created_at}
                                     for s in self.sessions.values()]})

        return await self._handle(request, handler)

    async def list_avatars(self, request: Request) -> JSONResponse:
        async def handler(_body, _token, _fault):
            voice = default_catalog().default_id
            return _ok([{"avatar_id": look.look_id, "pose_name": f"{look.label} (stand-in)", "default_voice": voice,
                         "is_public": True, "normal_preview": None, "status": "ACTIVE"} for look in LOOKS.values()])

        return await self._handle(request, handler)

    async def list_voices(self, request: Request) -> JSONResponse:
        async def handler(_body, _token, _fault):
            voices = [{"voice_id": v.voice_id, "language": "English", "gender": None, "name": v.label,
                       "preview_audio": None, "support_interactive_avatar": True}
                      for v in default_catalog().voices.values()]
            return JSONResponse({"error": None, "data": {"voices": voices}})

        return await self._handle(request, handler)

    async def stats(self, request: Request) -> JSONResponse:
        return JSONResponse({"open_sessions": len(self.sessions), "created_total": self.created_total,
                             "speech_started_at": list(SPEECH_STARTS)})

    async def set_fault(self, request: Request) -> JSONResponse:
        """Tests switch the fault for every later request: {"fault": "500" | ... | null, "slow_s": 3}."""
        body = await request.json()
        fault = body.get("fault")
        if fault is not None and fault not in FAULTS:
            return JSONResponse({"error": f"fault must be one of {', '.join(FAULTS)} or null"}, status_code=400)
        self.config.fault = fault
        self.config.slow_s = float(body.get("slow_s", self.config.slow_s))
        return JSONResponse({"fault": fault, "slow_s": self.config.slow_s})

    # --- lifecycle -----------------------------------------------------------------------
    async def _close(self, session_id: str) -> None:
        session = self.sessions.pop(session_id, None)
        if session is not None:
            await session.peer.close()

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            for s in list(self.sessions.values()):
                if now - s.last_activity > s.idle_timeout_s or now - s.created > self.config.duration_limit_s:
                    await self._close(s.session_id)


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text}")
    return value


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="HeyGen-compatible streaming server on loopback")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8790)
    parser.add_argument("--api-key", default=LocalConfig.api_key)
    parser.add_argument("--max-sessions", type=int, default=LocalConfig.max_sessions)
    parser.add_argument("--idle-timeout", type=float, default=LocalConfig.idle_timeout_s)
    parser.add_argument("--duration-limit", type=float, default=LocalConfig.duration_limit_s)
    parser.add_argument("--fault", choices=FAULTS, default=None, help="inject this fault into every request")
    parser.add_argument("--drop-media-after", type=_seconds, default=LocalConfig.drop_media_after_s,
                        metavar="SECONDS", help="drop-media: stop the media this long after the first frame")
    parser.add_argument("--slow-delay", type=_seconds, default=LocalConfig.slow_s, metavar="SECONDS",
                        help="slow: answer this late")
    args = parser.parse_args(argv)
    config = LocalConfig(api_key=args.api_key, max_sessions=args.max_sessions, idle_timeout_s=args.idle_timeout,
                         duration_limit_s=args.duration_limit, fault=args.fault, slow_s=args.slow_delay,
                         drop_media_after_s=args.drop_media_after)
    uvicorn.run(LocalHeyGen(config).app, host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
