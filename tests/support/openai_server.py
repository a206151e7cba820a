"""An OpenAI-compatible chat server for tests: real HTTP, real server-sent events.

    python -m tests.support.openai_server --port 8791

POST /v1/chat/completions streams the scripted reply. The script (POST /_control/script)
sets the chunks, where to hold the stream until POST /_control/release, and errors:
401, 429, 500, "hang" (never answers), "empty" (no content), "midstream" (an error
event after the first chunk) or "malformed" (an event that is not JSON). GET /_control/state
reports every request body and how many streams ended early (the client hung up).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

script: dict[str, Any] = {"chunks": ["Hello from the stub."], "hold_after": None, "error": None, "first_delay_s": 0}
state: dict[str, Any] = {"requests": [], "completed": 0, "hung_up": 0, "streaming": 0, "sent_at": []}
release = asyncio.Event()


def chunk(content: str | None, finish: str | None = None) -> str:
    delta = {"content": content} if content is not None else {}
    body = {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": 0, "model": "stub",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(body)}\n\n"


async def completions(request: Request):
    body = await request.json()
    state["requests"].append(body)
    error = script.get("error")
    if error in (401, 429, 500):
        messages = {401: "Incorrect API key provided", 429: "Rate limit reached", 500: "server error"}
        return JSONResponse({"error": {"message": messages[error], "type": "error", "code": error}},
                            status_code=error)
    if error == "hang":
        await asyncio.sleep(3600)

    async def events():
        state["streaming"] += 1
        finished = False
        try:
            yield chunk(None)  # the role chunk servers send first
            await asyncio.sleep(float(script.get("first_delay_s") or 0))  # the model "thinking"
            state["sent_at"] = []  # wall-clock send time of each chunk, for latency measurements
            if error == "midstream":  # some servers (HF's router among them) report errors as an event
                yield chunk(script["chunks"][0])
                yield f"data: {json.dumps({'error': {'message': 'model overloaded', 'type': 'server_error'}})}\n\n"
                return
            if error == "malformed":
                yield "data: {this is not json\n\n"
                return
            if error != "empty":
                for i, piece in enumerate(script["chunks"]):
                    if script.get("hold_after") == i:
                        await release.wait()
                    state["sent_at"].append(time.time())
                    yield chunk(piece)
                    await asyncio.sleep(0.01)
            yield chunk(None, "stop")
            yield "data: [DONE]\n\n"
            finished = True
        finally:
            state["streaming"] -= 1
            state["completed" if finished else "hung_up"] += 1

    return StreamingResponse(events(), media_type="text/event-stream")


async def set_script(request: Request):
    script.update({"chunks": ["Hello from the stub."], "hold_after": None, "error": None, "first_delay_s": 0})
    script.update(await request.json())
    release.clear()
    return Response(json.dumps(script), media_type="application/json")  # escaped: a script may hold lone surrogates


async def do_release(request: Request):
    release.set()
    return JSONResponse({"released": True})


async def get_state(request: Request):
    return JSONResponse(state)


app = Starlette(routes=[
    Route("/v1/chat/completions", completions, methods=["POST"]),
    Route("/_control/script", set_script, methods=["POST"]),
    Route("/_control/release", do_release, methods=["POST"]),
    Route("/_control/state", get_state, methods=["GET"]),
])

if __name__ == "__main__":
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    # info: the "Uvicorn running on" line tells OpenAIServerProcess the port is ours (no access log)
    uvicorn.run(app, host="127.0.0.1", port=parser.parse_args().port, log_level="info", access_log=False,
                timeout_graceful_shutdown=1)  # a "hang" request must not hold up the exit
