"""LITE mode's WebSocket (the session's `ws_url`): our voice goes to LiveAvatar as
`agent.speak` chunks of 16-bit mono PCM at 24 kHz, LiveAvatar's face lip-syncs to it.
Sends agent.speak / agent.speak_end / agent.interrupt / session.keep_alive; hands
agent.speak_started / agent.speak_ended / session.state_updated to the avatar."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from ...media.format import AUDIO_RATE
from ...tasks import TaskOwner
from ...text import json_object
from .errors import RoomError

log = logging.getLogger(__name__)
FIRST_CHUNK_S, CHUNK_S = 0.6, 1.0  # as pipecat: a short first chunk starts the face sooner
MAX_INCOMING_BYTES = 64 * 1024  # LiveAvatar's events are small
EventHandler = Callable[[dict[str, Any]], None]


class LiteSocket:
    def __init__(self, on_event: EventHandler) -> None:
        """`on_event(message)` runs on the event loop for each message from LiveAvatar, and
        once with {"type": "socket.closed"} if the socket ends before close()."""
        self._on_event = on_event
        self._ws: ClientConnection | None = None
        self._tasks = TaskOwner("liveavatar-lite")
        self._closing = False

    async def connect(self, ws_url: str, timeout_s: float) -> None:
        """Open the socket and wait for `session.state_updated: connected` (LiveAvatar wants
        nothing sent before)."""
        try:
            async with asyncio.timeout(timeout_s):
                ws = await connect(ws_url, max_size=MAX_INCOMING_BYTES, open_timeout=timeout_s)
                if self._closing:  # closed while it was opening
                    await ws.close()
                    raise RoomError("The session was closed while it was connecting.")
                self._ws = ws
                while True:
                    message = json_object(await ws.recv())
                    if message and message.get("type") == "session.state_updated":
                        if message.get("state") == "connected":
                            break
                        if message.get("state") in ("closing", "closed"):
                            raise RoomError("LiveAvatar closed the session's voice socket as it opened.")
        except RoomError:
            await self.close()
            raise
        except (OSError, TimeoutError, WebSocketException) as exc:
            await self.close()
            raise RoomError(f"Could not open LiveAvatar's voice socket ({type(exc).__name__}).") from None
        if self._closing or self._ws is None:
            raise RoomError("The session was closed while it was connecting.")
        self._tasks.spawn(self._read_forever(self._ws), "read")

    async def speak(self, audio: np.ndarray) -> None:
        """Send one piece of speech (24 kHz mono float) in LiveAvatar's chunk sizes."""
        pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)
        first = int(FIRST_CHUNK_S * AUDIO_RATE)
        cuts = [0, *range(first, pcm.size, int(CHUNK_S * AUDIO_RATE)), pcm.size]
        for start, end in itertools.pairwise(cuts):
            if end > start:
                await self._send({"type": "agent.speak", "audio": base64.b64encode(pcm[start:end].tobytes()).decode()})

    async def speak_end(self) -> str:
        event_id = uuid.uuid4().hex
        await self._send({"type": "agent.speak_end", "event_id": event_id})
        return event_id

    async def interrupt(self) -> None:
        await self._send({"type": "agent.interrupt", "event_id": uuid.uuid4().hex})

    async def keep_alive(self) -> None:
        await self._send({"type": "session.keep_alive", "event_id": uuid.uuid4().hex})

    async def _send(self, message: dict[str, Any]) -> None:
        if self._ws is None or self._closing:
            raise RoomError("LiveAvatar's voice socket is closed.")
        try:
            await self._ws.send(json.dumps(message))
        except WebSocketException:
            raise RoomError("LiveAvatar's voice socket closed.") from None

    async def _read_forever(self, ws: ClientConnection) -> None:
        with contextlib.suppress(WebSocketException, OSError):
            async for raw in ws:
                if (message := json_object(raw)) is not None:
                    self._on_event(message)
        if not self._closing:
            self._on_event({"type": "socket.closed"})

    async def close(self) -> None:
        """Idempotent."""
        self._closing = True
        await self._tasks.cancel_all()
        if self._ws is not None:
            ws, self._ws = self._ws, None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(), 2.0)

