"""FULL mode: LiveAvatar's agent speaks (its voice, and with `talk` its own LLM), steered
by data on the room's `agent-control` topic; its `agent-response` events say what the
avatar says and when."""

from __future__ import annotations

import uuid
from typing import Any

from ...events import NativeReply, UpstreamMessage
from ...text import valid_text
from .avatar import MAX_SAID_CHARS, LiveAvatarAvatar

CONTROL, RESPONSE = "agent-control", "agent-response"


class FullModeAvatar(LiveAvatarAvatar):
    mode = "FULL"
    _talk_pending = False  # a speak_response was sent: its transcription is the answer

    def _command(self, event_type: str, **payload: Any) -> None:
        self._room.publish(CONTROL, {"event_id": uuid.uuid4().hex, "event_type": event_type,
                                     "session_id": self.upstream_id, **payload})

    async def speak(self, text: str) -> None:
        self._command("avatar.speak_text", text=text)

    async def talk(self, text: str) -> None:
        """LiveAvatar's own LLM answers; the answer arrives as avatar.transcription."""
        self._command("avatar.speak_response", text=text)
        self._talk_pending = True

    async def interrupt(self) -> None:
        self._talk_pending = False
        self._command("avatar.interrupt")
        self._audio.clear()

    def _agent_event(self, event: dict[str, Any]) -> None:
        kind = event.get("event_type")
        text = valid_text(str(event.get("text") or "")).strip()
        if kind in ("avatar.speak_started", "avatar.speak_ended"):
            self.talking = kind == "avatar.speak_started"  # the clock reports the change
        elif kind == "avatar.transcription" and text:
            self._events.emit(UpstreamMessage(f"LiveAvatar says: {text[:MAX_SAID_CHARS]}"))
            if self._talk_pending:
                self._talk_pending = False
                self._events.emit(NativeReply(text))
        elif kind == "user.transcription" and text:
            self._events.emit(UpstreamMessage(f"LiveAvatar heard: {text[:MAX_SAID_CHARS]}"))
        elif kind in ("user.speak_started", "user.speak_ended"):
            self._events.emit(UpstreamMessage("LiveAvatar hears someone speaking." if kind == "user.speak_started"
                                              else "LiveAvatar stopped hearing speech."))
