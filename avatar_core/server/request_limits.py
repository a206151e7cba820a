"""Request bodies bounded before anything parses them.

Gradio parses a whole JSON body before any check of ours runs: one 50 MB "colour" cost
hundreds of MB of memory. The page's largest legitimate body is a WebRTC offer (a few KB)
or a 1000-character message; uploads have their own route and limit (Gradio's
max_file_size, counted as the file streams to disk).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY_BYTES = 256 * 1024
UPLOAD_OVERHEAD_BYTES = 64 * 1024  # multipart headers around an uploaded file


class RequestSizeLimit:
    """ASGI middleware: a body over the limit is answered 413, with one plain line, unread."""

    def __init__(self, app: ASGIApp, max_body_bytes: int = MAX_BODY_BYTES, max_upload_bytes: int = 0) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes + UPLOAD_OVERHEAD_BYTES

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_upload_bytes if scope["path"].rstrip("/").endswith("/upload") else self.max_body_bytes
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:  # the server enforces the length it declares
            if not length.isdigit() or int(length) > limit:
                await too_large(send, limit)
                return
            await self.app(scope, receive, send)
            return
        # no declared length (chunked): read up to the limit here, then hand the body on
        chunks: list[Message] = []
        size = 0
        while True:
            message = await receive()
            chunks.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > limit:
                await too_large(send, limit)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return chunks.pop(0) if chunks else await receive()

        await self.app(scope, replay, send)


async def too_large(send: Send, limit: int) -> None:
    # {"error": ...} is the shape Gradio's API errors have, so clients show the line
    body = json.dumps({"error": f"The request is too large: the limit is {limit // 1024} KB."}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
