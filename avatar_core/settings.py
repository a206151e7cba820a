"""Settings read from the environment and an optional `.env` file.

Every name here is part of the interface (scripts and Space secrets use them), so
each field is listed in README.md's settings table.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict


class SettingsError(Exception):
    """A setting is invalid; the message names it and says what is allowed."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    avatar_provider: Literal["local"] = Field(
        "local", description="Which avatar to stream: `local` is the built-in offline avatar."
    )
    max_sessions: int = Field(4, ge=1, le=200, description="Live avatar sessions allowed at once.")
    session_idle_timeout_s: float = Field(
        300.0, ge=1, le=86_400, description="A session with no user action for this long is closed."
    )
    gradio_server_name: str = Field("127.0.0.1", min_length=1, description="Address to listen on.")
    gradio_server_port: int = Field(7860, ge=1, le=65535, description="Port to listen on.")
    share: bool = Field(False, description="Ask Gradio for a public share link (same as `--share`).")
    default_quality: Literal["low", "medium", "high"] = Field(
        "low", description="Quality selected when the page opens."
    )
    video_delay_ms: int = Field(
        0, ge=0, le=500, description="Hold video back this long to line it up with audio at the viewer."
    )


def load_settings() -> Settings:
    """Settings from the environment; raises SettingsError naming each bad variable."""
    try:
        return Settings()
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = str(err["loc"][0]).upper() if err["loc"] else "settings"
            lines.append(f"{name}: {err['msg']} (got {err.get('input')!r})")
        raise SettingsError("Invalid setting. " + "; ".join(lines)) from None
