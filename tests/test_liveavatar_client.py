"""The LiveAvatar REST client against the LiveAvatar-compatible local server, over loopback
HTTP: request and reply shapes (both envelope forms), every typed error, limits."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from avatar_core.providers.liveavatar import errors
from avatar_core.providers.liveavatar.client import LiveAvatarClient, SessionToken
from tests.support.app_process import free_port
from tests.support.liveavatar_local_process import API_KEY, LocalLiveAvatarProcess

pytestmark = pytest.mark.integration  # starts a stand-in


@pytest.fixture(scope="module")
def server():
    server = LocalLiveAvatarProcess("--max-sessions", "2")
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def no_fault(server):
    server.set_fault(None)
    yield
    server.set_fault(None)

    async def close_all() -> None:
        c = LiveAvatarClient(API_KEY, server.url, 10.0)
        try:
            for s in await c.list_sessions():
                await c.stop(str(s["session_id"]))
        finally:
            await c.aclose()

    asyncio.run(close_all())


def run(coro):
    return asyncio.run(coro)


def test_token_start_keep_alive_stop_and_lists(server):
    async def body():
        c = LiveAvatarClient(API_KEY, server.url, 10.0)
        try:
            public, voices = await c.list_avatars(public=True), await c.list_voices()
            assert {"ava", "leo", "mira"} <= {a["id"] for a in public} and await c.list_avatars(public=False) == []
            assert "heart" in {v["id"] for v in voices}
            token = await c.create_token("FULL", "leo", "heart", is_sandbox=True)
            assert isinstance(token, SessionToken) and token.session_id and len(token.session_token) > 20
            assert [s["session_id"] for s in await c.list_sessions()] == [token.session_id]
            started = await c.start(token)
            assert started.session_id == token.session_id and started.livekit_url.startswith("ws")
            assert started.livekit_client_token and started.max_session_duration_s == 1200
            await c.keep_alive(token.session_id, token.session_token)
            await c.keep_alive(token.session_id)  # with the key too
            await c.stop(token.session_id, token.session_token)
            assert server.open_sessions() == 0
            with pytest.raises(errors.SessionClosedError):
                await c.keep_alive(token.session_id)
        finally:
            await c.aclose()

    run(body())


def test_typed_errors_say_one_line_and_never_the_key(server):
    async def body():
        wrong = LiveAvatarClient("wrong-key", server.url, 10.0)
        c = LiveAvatarClient(API_KEY, server.url, 10.0)
        try:
            with pytest.raises(errors.BadKeyError) as bad_key:
                await wrong.create_token("FULL", "ava")
            assert "wrong-key" not in str(bad_key.value) and "LIVEAVATAR_API_KEY" in str(bad_key.value)
            with pytest.raises(errors.AvatarNotFoundError):
                await c.create_token("FULL", "nobody")
            with pytest.raises(errors.BadRequestError, match="mode must be FULL or LITE"):
                await c.create_token("HALF", "ava")  # type: ignore[arg-type]
            first, second = await c.create_token("LITE", "ava"), await c.create_token("FULL", "mira")
            with pytest.raises(errors.ConcurrencyLimitError):  # the stand-in allows 2
                await c.create_token("FULL", "ava")
            with pytest.raises(errors.BadKeyError):  # another session's token
                await c.keep_alive(first.session_id, second.session_token)
            for fault, kind in [("500", errors.ServerError), ("401", errors.BadKeyError),
                                ("402", errors.NoCreditsError), ("429", errors.ConcurrencyLimitError)]:
                server.set_fault(fault)
                with pytest.raises(kind):
                    await c.list_voices()
            server.set_fault("slow", slow_s=3)
            quick = LiveAvatarClient(API_KEY, server.url, 1.0)
            with pytest.raises(errors.RequestTimeoutError):
                await quick.list_sessions()
            await quick.aclose()
        finally:
            await c.aclose()
            await wrong.aclose()

    run(body())


def test_both_envelope_forms_and_what_is_not_liveavatar():
    """The docs show {"code": 100, "data": {...}}; some replies carry the fields at the top."""
    async def flat_token(request):
        return JSONResponse({"session_id": "s-1", "session_token": "t-1"})

    async def html(request):
        return PlainTextResponse("<html>proxy</html>", status_code=200)

    async def refused(request):
        return JSONResponse({"code": 400, "message": "avatar_id is invalid: avatar does not exist"}, status_code=400)

    app = Starlette(routes=[Route("/flat/v1/sessions/token", flat_token, methods=["POST"]),
                            Route("/html/v1/sessions/token", html, methods=["POST"]),
                            Route("/refused/v1/sessions/token", refused, methods=["POST"])])

    async def body():
        import uvicorn

        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        serving = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.05)
        try:
            base = f"http://127.0.0.1:{port}"
            flat = LiveAvatarClient(API_KEY, base + "/flat", 5.0)
            assert await flat.create_token("FULL", "ava") == SessionToken("s-1", "t-1")
            with pytest.raises(errors.NotLiveAvatarError, match="LIVEAVATAR_BASE_URL"):
                await LiveAvatarClient(API_KEY, base + "/html", 5.0).create_token("FULL", "ava")
            with pytest.raises(errors.AvatarNotFoundError):
                await LiveAvatarClient(API_KEY, base + "/refused", 5.0).create_token("FULL", "ava")
            with pytest.raises(errors.UnreachableError, match="cannot be reached"):
                await LiveAvatarClient(API_KEY, f"http://127.0.0.1:{free_port()}", 5.0).list_voices()
        finally:
            server.should_exit = True
            await serving

    run(body())


def test_the_key_goes_only_in_its_header_and_tokens_only_to_their_session(server):
    seen: list[dict] = []

    async def body():
        async def record(request: httpx.Request) -> None:
            seen.append({"path": request.url.path, "headers": dict(request.headers),
                         "body": json.loads(request.content or b"null")})

        c = LiveAvatarClient(API_KEY, server.url, 10.0)
        c._http.event_hooks["request"] = [record]
        try:
            token = await c.create_token("FULL", "ava")
            await c.start(token)
            await c.stop(token.session_id)
        finally:
            await c.aclose()
        return token

    token = run(body())
    by_path = {s["path"]: s for s in seen}
    assert by_path["/v1/sessions/token"]["headers"]["x-api-key"] == API_KEY
    start = by_path["/v1/sessions/start"]["headers"]
    assert start["authorization"] == f"Bearer {token.session_token}" and "x-api-key" not in start
    assert all(API_KEY not in json.dumps(s["body"]) for s in seen)


def test_browser_clients_get_cors_answers(server):
    """A page of another origin calls the API with the key in a header: the preflight is
    answered and the reply carries the origin rule, as a public API's do."""
    origin = "http://127.0.0.1:9"
    preflight = httpx.options(server.url + "/v1/sessions/token", timeout=5, headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-api-key"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "x-api-key" in preflight.headers["access-control-allow-headers"].lower()
    reply = httpx.get(server.url + "/v1/avatars/public", headers={"Origin": origin}, timeout=5)
    assert reply.status_code == 200 and reply.headers["access-control-allow-origin"] == "*"
    refused = httpx.post(server.url + "/v1/sessions/token", json={}, headers={"Origin": origin}, timeout=5)
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == "*"  # errors readable too


def test_the_service_offers_avatars_from_both_lists_and_voices_by_mode(server):
    from avatar_core.providers.liveavatar.avatar import Timing
    from avatar_core.providers.liveavatar.service import LiveAvatarService
    from avatar_core.providers.local.face import LOOKS
    from avatar_core.providers.local.speech import default_catalog

    async def choices(mode: str):
        service = LiveAvatarService(LiveAvatarClient(API_KEY, server.url, 10.0), mode, False,  # type: ignore[arg-type]
                                    Timing(5.0, 60.0), 10.0)
        try:
            return service.initial_choices(), await service.choices(), service.capabilities
        finally:
            await service.aclose()

    before, full, capabilities = run(choices("FULL"))
    assert before.avatars == [] and before.voices == []  # nothing is known until LiveAvatar answers
    # the user's own and the public list name the same avatars here: each is offered once
    assert [avatar_id for _, avatar_id in full.avatars] == list(LOOKS)
    assert all(label.endswith("(stand-in)") for label, _ in full.avatars)
    assert sorted(voice_id for _, voice_id in full.voices) == sorted(default_catalog().voices)  # LiveAvatar's list
    assert capabilities.own_llm == "LiveAvatar's LLM" and capabilities.upstream_sessions
    before, lite, capabilities = run(choices("LITE"))
    assert before.voices == lite.voices == default_catalog().choices()  # LITE speaks with our voices
    assert capabilities.own_llm is None  # LITE: our LLM only
