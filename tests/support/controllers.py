"""Controllers over the real offline avatar, on the test's own event loop (what the
app's start-up does on Gradio's loop)."""

from __future__ import annotations

from avatar_core.providers.base import AvatarService
from avatar_core.providers.local.service import LocalService
from avatar_core.server.runtime import Runtime
from avatar_core.session.admission import Admission
from avatar_core.session.controller import Controller, TalkSettings, VoiceSettings
from avatar_core.session.manager import SessionManager

NO_LLM = TalkSettings(None, "Be brief.", 10)


def started_controller(max_sessions: int = 2, idle_timeout_s: float = 300.0, talk: TalkSettings = NO_LLM,
                       service: AvatarService | None = None, max_per_client: int | None = None,
                       operator_token: str | None = None, admission: Admission | None = None,
                       voice: VoiceSettings | None = None) -> Controller:
    """Call inside the test's running loop; close with `controller.sessions.close_all(...)`."""
    sessions = SessionManager(service or LocalService(), max_sessions, idle_timeout_s,
                              max_per_client=max_per_client, admission=admission)
    sessions.start(Runtime.on_running_loop(max_sessions))
    return Controller(sessions, talk, operator_token, voice)
