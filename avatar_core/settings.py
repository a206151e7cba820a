"""Settings read from the environment and an optional `.env` file.

Every name here is part of the interface (scripts and Space secrets use them), so
each field is listed in README.md's settings table.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .providers.base import Quality

LipSync = Literal["phonemes", "loudness"]


class SettingsError(Exception):
    """A setting is invalid; the message names it and says what is allowed."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    avatar_provider: Literal["local", "liveavatar", "heygen"] = Field(
        "local", description="Which avatar to stream: `local` (built-in, offline), `liveavatar` or `heygen` (v1).")
    heygen_api_key: SecretStr | None = Field(None, description="HeyGen API key (server side only).")
    heygen_base_url: str = Field("https://api.heygen.com", pattern=r"^https?://\S+$",
                                 description="HeyGen API address (a local stand-in for tests).")
    heygen_timeout_s: float = Field(15.0, gt=0, le=120, description="Seconds to wait for a HeyGen API reply.")
    heygen_keep_alive_s: float = Field(30.0, gt=0, le=600,
                                       description="Seconds between keep-alives for an open HeyGen session.")
    heygen_connect_timeout_s: float = Field(15.0, gt=0, le=120,
                                            description="Seconds to wait for HeyGen's media to connect.")
    liveavatar_api_key: SecretStr | None = Field(None, description="LiveAvatar API key (server side only).")
    liveavatar_base_url: str = Field("https://api.liveavatar.com", pattern=r"^https?://\S+$",
                                     description="LiveAvatar API address (a local stand-in for tests).")
    liveavatar_mode: Literal["full", "lite"] = Field(
        "full", description="`full`: LiveAvatar's voice and LLM; `lite`: our voices, LiveAvatar's face.")
    liveavatar_sandbox: bool = Field(False, description="Sandbox sessions (no credits spent).")
    liveavatar_timeout_s: float = Field(15.0, gt=0, le=120, description="Seconds to wait for a LiveAvatar reply.")
    liveavatar_keep_alive_s: float = Field(
        60.0, gt=0, le=280, description="Seconds between keep-alives (LiveAvatar closes after 5 idle minutes).")
    liveavatar_connect_timeout_s: float = Field(
        20.0, gt=0, le=120, description="Seconds to wait for LiveAvatar's LiveKit room to be joined.")
    operator_token: SecretStr | None = Field(
        None, min_length=16, max_length=200,
        description="Lets whoever gives it close every upstream session under the key.")
    max_sessions: int = Field(6, ge=1, le=200, description="Live avatar sessions allowed at once.")
    admission_min_fps: float = Field(
        24.0, ge=0, le=25, description="New sessions only while the running ones keep this frame rate (0: off).")
    max_sessions_per_client: int = Field(2, ge=1, le=200,
                                         description="Live sessions one client address may hold at once.")
    session_idle_timeout_s: float = Field(
        300.0, ge=1, le=86_400, description="A session with no user action for this long is closed."
    )
    gradio_server_name: str = Field("127.0.0.1", min_length=1, description="Address to listen on.")
    gradio_server_port: int = Field(7860, ge=1, le=65535, description="Port to listen on.")
    openai_api_key: SecretStr | None = Field(None, description="Key for the OpenAI-compatible LLM server.")
    openai_base_url: str | None = Field(None, pattern=r"^https?://\S+$",
                                        description="OpenAI-compatible server address (default: OpenAI).")
    hf_token: SecretStr | None = Field(None, description="Hugging Face token: alone, it uses HF's router.")
    llm_model: str | None = Field(None, min_length=1, description="Chat model for Talk.")
    system_prompt: str = Field(
        "You are a friendly demo avatar streamed live from a server. Answer in one or two short, "
        "natural spoken sentences, without lists, markdown or emoji.",
        min_length=1, max_length=4000, description="The LLM's instructions (and HeyGen's knowledge base).")
    llm_max_history: int = Field(10, ge=0, le=100, description="Earlier exchanges sent with each Talk.")
    llm_timeout_s: float = Field(30.0, gt=0, le=300, description="Seconds to wait for the LLM.")
    llm_max_tokens: int = Field(300, ge=16, le=8192,  # a spoken answer of a minute or two
                                description="Most tokens an LLM answer may have.")
    lip_sync: LipSync = Field(
        "phonemes", description="The offline avatar's lips: `phonemes` (shapes from the voice's own phoneme "
        "timings) or `loudness` (opening with the volume only, as before; kept for comparison).")
    voice_pause_ms: int = Field(500, ge=150, le=3000,
                                description="Silence that ends a spoken turn (voice input), in milliseconds.")
    voice_max_turn_s: float = Field(15.0, ge=2, le=60, description="A spoken turn longer than this is cut.")
    stt_model: str | None = Field(None, min_length=1,
                                  description="A local faster-whisper model directory instead of the bundled one.")
    share: bool = Field(False, description="Ask Gradio for a public share link (same as `--share`).")
    default_quality: Quality = Field(
        "low", description="Quality selected when the page opens."
    )
    video_delay_ms: int | None = Field(
        None, ge=0, le=500, description="Hold video back this long to line it up with audio at the viewer "
        "(default: the provider's own, 40 for the offline avatar, 0 for relays).")
    turn_provider: Literal["none", "hf", "cloudflare", "custom"] = Field(
        "none", description="TURN relay for viewers behind NAT: `none`, `hf` (HF_TOKEN), `cloudflare` "
                            "(its keys) or `custom` (TURN_URLS...). Needed on Hugging Face Spaces.")
    turn_urls: str = Field("", description="`custom`: comma-separated `turn:`/`turns:`/`stun:` URLs.")
    turn_username: str = Field("", description="`custom`: TURN user name.")
    turn_credential: SecretStr | None = Field(None, description="`custom`: TURN password.")
    cloudflare_turn_key_id: str = Field("", description="`cloudflare`: TURN key ID.")
    cloudflare_turn_key_api_token: SecretStr | None = Field(None, description="`cloudflare`: TURN key API token.")
    turn_credentials_url: str | None = Field(
        None, pattern=r"^https?://\S+$",
        description="`hf`/`cloudflare`: where to get credentials, if not the provider's own address.")
    turn_ttl_s: int = Field(86_400, ge=2, le=172_800,
                            description="Lifetime asked for fetched TURN credentials; renewed at half of it.")
    turn_force_relay: bool = Field(False, description="Diagnosis: browsers may only connect through TURN.")


    def secret_values(self) -> list[str]:
        """Every secret's value, so the log can hide them wherever a library prints them."""
        values = [getattr(self, name) for name in type(self).model_fields]
        return [v.get_secret_value() for v in values if isinstance(v, SecretStr) and v.get_secret_value()]

    @model_validator(mode="after")
    def _upstream_providers_need_a_key(self) -> Settings:
        for provider, key in (("heygen", self.heygen_api_key), ("liveavatar", self.liveavatar_api_key)):
            if self.avatar_provider == provider and not _is_set(key):
                raise ValueError(f"{provider.upper()}_API_KEY must be set when AVATAR_PROVIDER={provider}")
        return self

    @model_validator(mode="after")
    def _turn_provider_needs_its_settings(self) -> Settings:
        needs = {"hf": ["hf_token"], "cloudflare": ["cloudflare_turn_key_id", "cloudflare_turn_key_api_token"],
                 "custom": ["turn_urls"], "none": []}[self.turn_provider]
        missing = [name.upper() for name in needs if not _is_set(getattr(self, name))]
        if missing:
            raise ValueError(f"TURN_PROVIDER={self.turn_provider} needs {' and '.join(missing)}")
        if self.turn_force_relay and self.turn_provider == "none":
            raise ValueError("TURN_FORCE_RELAY=1 needs a TURN server: set TURN_PROVIDER")
        return self


def _is_set(value: str | SecretStr | None) -> bool:
    return bool(value.get_secret_value() if isinstance(value, SecretStr) else value)


SECRET_WORDS = ("KEY", "TOKEN", "CREDENTIAL", "SECRET", "PASSWORD")


def load_settings() -> Settings:
    """Settings from the environment; raises SettingsError naming each bad variable."""
    try:
        return Settings()
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            if not err["loc"]:  # a rule across settings: its message names them
                lines.append(str(err["msg"]).removeprefix("Value error, "))
                continue
            name = str(err["loc"][0]).upper()
            shown = "(hidden)" if any(word in name for word in SECRET_WORDS) else repr(err.get("input"))
            lines.append(f"{name}: {err['msg']} (got {shown})")
        raise SettingsError("Invalid setting. " + "; ".join(lines)) from None
