"""The stand-in's rooms: per started session, the offline avatar as a participant, behaving
as LiveAvatar's agent does.

- FULL: `agent-control` data from the client (avatar.speak_text, avatar.speak_response,
  avatar.interrupt) drives the avatar; `agent-response` events go back
  (avatar.speak_started / avatar.speak_ended, avatar.transcription).
- LITE: the session's WebSocket (ws_url) carries our voice as `agent.speak` PCM chunks
  (16-bit mono 24 kHz, base64), `agent.speak_end`, `agent.interrupt`, `session.keep_alive`;
  the mouth follows that audio; `session.state_updated` and `agent.speak_started` /
  `agent.speak_ended` go back.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from starlette.responses import Response
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from ...events import SessionEvent, UpstreamMessage
from ...media.format import AUDIO_RATE
from ...providers.base import MAX_TEXT_CHARS
from ...providers.local.avatar import LocalAvatar
from ...providers.local.service import make_local_avatar
from ...tasks import TaskOwner
from ...text import json_object
from .room import AvatarParticipant, RoomConnection
from .session import LocalSession

log = logging.getLogger(__name__)
MAX_WS_MESSAGE_BYTES = 1_500_000  # LiveAvatar: at most 1 MB of base64 audio per message
STAND_IN_ANSWER = "This is the local stand-in, not a language model. You said: {text}"


class _LoggedEvents:
    def emit(self, event: SessionEvent) -> None:
        if isinstance(event, UpstreamMessage):
            log.warning("avatar: %s", event.text)


@dataclass
class Room:
    session: LocalSession
    avatar: LocalAvatar
    participant: AvatarParticipant | None = None
    connections: set[RoomConnection] = field(default_factory=set)
    lite: WebSocket | None = None
    lite_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    dropped: bool = False  # the room went away (a test's fault): no more joins
    said: str = ""  # FULL: what the avatar is saying now (its transcription)
    speak_event: str | None = None  # LITE: the agent.speak_end being played out


class Rooms:
    def __init__(self, public_url: str, touch: Callable[[str], bool], fault: Callable[[], str | None]) -> None:
        """`public_url`: this server's ws:// address; `touch(session_id)`: keep-alive
        (False when the session is gone); `fault()`: the fault in force ("room-silent": rooms
        answer the join and never offer media)."""
        self._public_url = public_url
        self._touch = touch
        self._fault = fault
        self._rooms: dict[str, Room] = {}  # session token -> room
        self._tasks = TaskOwner("liveavatar-rooms")

    def routes(self) -> list[WebSocketRoute]:
        return [WebSocketRoute("/rtc/v1", self._v1), WebSocketRoute("/rtc", self._signal),
                WebSocketRoute("/v1/lite/{session_id}", self._lite)]

    async def open(self, session: LocalSession) -> dict[str, Any]:
        avatar = await asyncio.to_thread(make_local_avatar, session.avatar_id, session.voice_id, "low",
                                         _LoggedEvents())
        room = Room(session, avatar)
        room.participant = AvatarParticipant(avatar, lambda speaking: self._speaking(room, speaking))
        self._rooms[session.token] = room
        base = self._public_url
        reply: dict[str, Any] = {"livekit_url": base, "livekit_client_token": session.token}
        if session.mode == "LITE":
            reply["ws_url"] = f"{base}/v1/lite/{session.session_id}?token={room.lite_token}"
        return reply

    async def close(self, session: LocalSession) -> None:
        room = self._rooms.pop(session.token, None)
        if room is None:
            return
        for connection in list(room.connections):
            await connection.close(leave=True)
        if room.lite is not None:
            with contextlib.suppress(Exception):
                await room.lite.send_json({"type": "session.state_updated", "state": "closed"})
                await room.lite.close()
        await room.avatar.close()

    # --- LiveKit signalling ----------------------------------------------------------------
    async def _v1(self, websocket: WebSocket) -> None:
        # the SDK tries the single-peer-connection path first and falls back on a 404
        await websocket.send_denial_response(Response(status_code=404))

    async def _signal(self, websocket: WebSocket) -> None:
        bearer = websocket.headers.get("authorization", "")
        token = bearer[7:].strip() if bearer.lower().startswith("bearer ") else ""
        token = token or websocket.query_params.get("access_token", "")
        room = self._rooms.get(token)
        if room is None or room.participant is None or room.dropped:
            await websocket.send_denial_response(Response("invalid token", status_code=401))
            return
        await websocket.accept()
        connection = RoomConnection(websocket, room.session.session_id, "client",
                                    room.participant, lambda topic, payload: self._data(room, topic, payload))
        room.connections.add(connection)
        try:
            await connection.run(silent=self._fault() == "room-silent")
        finally:
            room.connections.discard(connection)

    async def drop(self, what: str) -> int:
        """A test's fault, in every open room: "room" (its connections cut, no rejoin) or
        "socket" (LITE's WebSocket closed). How many were dropped."""
        dropped = 0
        for room in list(self._rooms.values()):
            if what == "room" and room.connections:
                room.dropped = True
                for connection in list(room.connections):
                    await connection.close(leave=False)
                dropped += 1
            elif what == "socket" and room.lite is not None:
                with contextlib.suppress(Exception):
                    await room.lite.close()
                room.lite = None
                dropped += 1
        return dropped

    def _send(self, room: Room, event_type: str, **payload: Any) -> None:
        event = {"event_id": uuid.uuid4().hex, "event_type": event_type, "session_id": room.session.session_id,
                 **payload}
        for connection in list(room.connections):
            connection.send("agent-response", event)

    # --- FULL: the agent steered by data ---------------------------------------------------
    def _data(self, room: Room, topic: str, payload: bytes) -> None:
        event = json_object(payload)
        if topic != "agent-control" or room.session.mode != "FULL" or event is None:
            return
        kind = event.get("event_type")
        text = str(event.get("text") or "").strip()[:MAX_TEXT_CHARS]
        self._touch(room.session.session_id)
        if kind in ("avatar.speak_text", "avatar.speak_response") and text:
            said = text if kind == "avatar.speak_text" else STAND_IN_ANSWER.format(text=text)
            room.said = said
            self._tasks.spawn(room.avatar.speak(said), "speak")
            self._send(room, "avatar.transcription", text=said, source_event_id=event.get("event_id"))
        elif kind == "avatar.interrupt":
            self._tasks.spawn(room.avatar.interrupt(), "interrupt")

    def _speaking(self, room: Room, speaking: bool) -> None:
        """From the avatar's clock, which the tracks advance on the event loop."""
        if room.session.mode == "FULL":
            self._send(room, "avatar.speak_started" if speaking else "avatar.speak_ended")
        elif room.lite is not None:
            message: dict[str, Any] = {"type": "agent.speak_started" if speaking else "agent.speak_ended",
                                       "event_id": room.speak_event, "task": {"id": room.speak_event}}
            self._tasks.spawn(self._lite_send(room, message), "lite-event")

    # --- LITE: our voice over the session's WebSocket ---------------------------------------
    async def _lite(self, websocket: WebSocket) -> None:
        session_id = websocket.path_params["session_id"]
        room = next((r for r in self._rooms.values() if r.session.session_id == session_id), None)
        token = websocket.query_params.get("token", "")
        if room is None or room.session.mode != "LITE" or not secrets.compare_digest(token, room.lite_token):
            await websocket.send_denial_response(Response("invalid session", status_code=401))
            return
        await websocket.accept()
        room.lite = websocket
        await websocket.send_json({"type": "session.state_updated", "state": "connected"})
        try:
            while True:
                raw = await websocket.receive_text()
                if len(raw) > MAX_WS_MESSAGE_BYTES:
                    await websocket.send_json({"type": "error", "message": "message too large"})
                    continue
                await self._lite_message(room, raw)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            if room.lite is websocket:
                room.lite = None

    async def _lite_message(self, room: Room, raw: str) -> None:
        message = json_object(raw)
        if message is None:
            return
        kind = message.get("type")
        self._touch(room.session.session_id)
        if kind == "agent.speak":
            try:
                pcm = np.frombuffer(base64.b64decode(str(message.get("audio") or ""), validate=True), np.int16)
            except (binascii.Error, ValueError):
                await self._lite_send(room, {"type": "error", "message": "audio must be base64 16-bit PCM"})
                return
            if not room.avatar.play(pcm.astype(np.float32) / 32768.0):
                await self._lite_send(room, {"type": "error", "message": "too much audio is waiting to be played"})
        elif kind == "agent.speak_end":
            room.speak_event = str(message.get("event_id") or uuid.uuid4().hex)
        elif kind == "agent.interrupt":
            await room.avatar.interrupt()

    async def _lite_send(self, room: Room, message: dict[str, Any]) -> None:
        if room.lite is not None:
            with contextlib.suppress(Exception):
                await room.lite.send_json(message)



assert AUDIO_RATE == 24_000  # LITE's audio format is our voices' own: no resampling
