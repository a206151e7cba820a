"""LiveAvatar (HeyGen's current streaming avatar) as a provider: one API client for the
app, avatar and voice lists, sessions in FULL or LITE mode, and the ledger that stops
every upstream session this process opened."""

from __future__ import annotations

import logging
import time

from ...errors import UserError
from ...events import EventSink
from ...settings import Settings
from ..base import AvatarService, Capabilities, Choice, Choices, Quality
from ..local.speech import default_catalog
from ..upstream_ledger import Listed, UpstreamLedger
from .avatar import LiveAvatarAvatar, Timing
from .client import LiveAvatarClient, Mode
from .full import FullModeAvatar
from .lite import LiteModeAvatar

log = logging.getLogger(__name__)
CHOICES_TTL_S = 600
NOT_STARTED = frozenset({"new", "created", "pending", "initialized"})  # listed statuses of unstarted sessions


class LiveAvatarService(AvatarService):
    name = "liveavatar"
    label = "LiveAvatar"

    def __init__(self, client: LiveAvatarClient, mode: Mode, sandbox: bool, timing: Timing,
                 request_timeout_s: float) -> None:
        self.client, self.mode, self._sandbox, self._timing = client, mode, sandbox, timing
        # FULL: LiveAvatar's voices and LLM; LITE: our voices, our LLM
        own_llm = "LiveAvatar's LLM" if mode == "FULL" else None
        self.capabilities = Capabilities(own_llm=own_llm, upstream_lists=True, upstream_sessions=True)
        # at shutdown: a creation in flight, its stop, and one last try of failed stops
        self.close_timeout_s = 3 * request_timeout_s
        self._cached: tuple[float, Choices] | None = None
        self._labels: dict[str, str] = {}  # avatar id -> name, for the status line
        self.ledger = UpstreamLedger("LiveAvatar", self.client.stop, self._list_sessions)

    @classmethod
    def from_settings(cls, settings: Settings) -> LiveAvatarService:
        assert settings.liveavatar_api_key is not None  # Settings refuses liveavatar without a key
        client = LiveAvatarClient(settings.liveavatar_api_key.get_secret_value(), settings.liveavatar_base_url,
                                  timeout_s=settings.liveavatar_timeout_s)
        mode: Mode = "LITE" if settings.liveavatar_mode == "lite" else "FULL"
        timing = Timing(settings.liveavatar_connect_timeout_s, settings.liveavatar_keep_alive_s)
        return cls(client, mode, settings.liveavatar_sandbox, timing, settings.liveavatar_timeout_s)

    def initial_choices(self) -> Choices:
        # LITE speaks with our offline voices, known now; the avatars come from LiveAvatar
        return Choices([], default_catalog().choices() if self.mode == "LITE" else [])

    async def choices(self) -> Choices:
        if self._cached and time.monotonic() - self._cached[0] < CHOICES_TTL_S:
            return self._cached[1]
        avatars: list[Choice] = []
        for listed in [*await self.client.list_avatars(public=False), *await self.client.list_avatars(public=True)]:
            avatar_id = str(listed.get("id") or listed.get("avatar_id") or "")
            if avatar_id and avatar_id not in self._labels:
                self._labels[avatar_id] = str(listed.get("name") or avatar_id)[:80]
                avatars.append((self._labels[avatar_id], avatar_id))
        if self.mode == "LITE":
            voices = default_catalog().choices()
        else:
            voices = [(f"{v.get('name') or v.get('id')} ({v.get('language') or '?'})"[:80], str(v.get("id")))
                      for v in await self.client.list_voices() if v.get("id")]
        choices = Choices(avatars, voices)
        self._cached = (time.monotonic(), choices)
        return choices

    async def create(self, avatar_id: str, voice_id: str, quality: Quality, events: EventSink) -> LiveAvatarAvatar:
        avatar_id, voice_id = (avatar_id or "").strip(), (voice_id or "").strip()
        if not avatar_id:
            avatar_id = (await self.choices()).default_avatar or ""
            if not avatar_id:
                raise UserError("LiveAvatar lists no avatar for this key: give an avatar ID.")
        voice = default_catalog().get(voice_id) if self.mode == "LITE" else None  # refuses unknown voices now
        async with self.ledger.creation() as record:
            full_voice = (voice_id or None) if voice is None else None  # FULL: empty is the avatar's own
            token = await self.client.create_token(self.mode, avatar_id, full_voice, is_sandbox=self._sandbox)
            record(token.session_id)
        label = self._labels.get(avatar_id, avatar_id)
        if voice is not None:
            return LiteModeAvatar(self.client, token, label, quality, events, self._timing, self.ledger.stop,
                                  voice=voice)
        return FullModeAvatar(self.client, token, label, quality, events, self._timing, self.ledger.stop)


    async def _list_sessions(self) -> list[Listed]:
        return [Listed.from_reply(s, NOT_STARTED) for s in await self.client.list_sessions()]

    def warm_up(self) -> None:
        """LITE speaks with our voices: load them before the first Repeat."""
        if self.mode == "LITE":
            default_catalog().warm_up()

    async def close_leftovers(self, keep: frozenset[str], everything: bool = False) -> int:
        return await self.ledger.close_leftovers(keep, everything)

    async def aclose(self) -> None:
        """Shutdown: lost creations looked for, one last try for every stop still failing."""
        await self.ledger.close()
        await self.client.aclose()
