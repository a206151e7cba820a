"""HeyGen (v1, the original demo's protocol) as a provider: one API client for the app,
lists from avatar.list and v2/voices, and clean-up of upstream sessions nobody owns."""

from __future__ import annotations

import logging
import time

from ...events import EventSink
from ...settings import Settings
from ..base import AvatarService, Capabilities, Choices, Quality
from ..upstream_ledger import Listed, UpstreamLedger
from .avatar import HeyGenAvatar
from .client import HeyGenClient

log = logging.getLogger(__name__)
CHOICES_TTL_S = 600
NOT_STARTED = frozenset({"new"})  # streaming.list's status of a session nobody has connected to
DEFAULT_AVATAR = "default"  # HeyGen's own default avatar, when none is given


class HeyGenService(AvatarService):
    name = "heygen"
    label = "HeyGen"
    capabilities = Capabilities(own_llm="HeyGen's LLM", upstream_lists=True, upstream_sessions=True)

    def __init__(self, client: HeyGenClient, connect_timeout_s: float, keep_alive_s: float,
                 knowledge_base: str | None, request_timeout_s: float) -> None:
        self.client = client
        # at shutdown: a creation in flight, its stop, and one last try of failed stops
        self.close_timeout_s = 3 * request_timeout_s
        self._connect_timeout_s, self._keep_alive_s = connect_timeout_s, keep_alive_s
        self._knowledge_base = knowledge_base  # HeyGen's talk task answers with this as its instructions
        self._cached: tuple[float, Choices] | None = None
        self.ledger = UpstreamLedger("HeyGen", self.client.stop, self._list_sessions)

    @classmethod
    def from_settings(cls, settings: Settings) -> HeyGenService:
        assert settings.heygen_api_key is not None  # Settings refuses heygen without a key
        client = HeyGenClient(settings.heygen_api_key.get_secret_value(), settings.heygen_base_url,
                              timeout_s=settings.heygen_timeout_s)
        return cls(client, settings.heygen_connect_timeout_s, settings.heygen_keep_alive_s, settings.system_prompt,
                   settings.heygen_timeout_s)

    def initial_choices(self) -> Choices:
        return Choices()  # filled from HeyGen when the page loads

    async def choices(self) -> Choices:
        if self._cached and time.monotonic() - self._cached[0] < CHOICES_TTL_S:
            return self._cached[1]
        avatars = [(f"{a.get('pose_name') or a['avatar_id']}", str(a["avatar_id"]))
                   for a in await self.client.list_avatars() if a.get("avatar_id")]
        voices = [(f"{v.get('name') or v['voice_id']} ({v.get('language') or '?'})", str(v["voice_id"]))
                  for v in await self.client.list_voices()
                  if v.get("voice_id") and v.get("support_interactive_avatar", True)]
        choices = Choices(avatars, voices)
        self._cached = (time.monotonic(), choices)
        return choices

    async def create(self, avatar_id: str, voice_id: str, quality: Quality, events: EventSink) -> HeyGenAvatar:
        avatar_id = (avatar_id or "").strip() or DEFAULT_AVATAR
        async with self.ledger.creation() as record:
            session = await self.client.new_session(quality, avatar_id, (voice_id or "").strip() or None,
                                                    knowledge_base=self._knowledge_base)
            record(session.session_id)
        return HeyGenAvatar(self.client, session, avatar_id, quality, events, self._connect_timeout_s,
                            self._keep_alive_s, self.ledger.stop)


    async def _list_sessions(self) -> list[Listed]:
        return [Listed.from_reply(s, NOT_STARTED) for s in await self.client.list_sessions()]

    async def close_leftovers(self, keep: frozenset[str], everything: bool = False) -> int:
        return await self.ledger.close_leftovers(keep, everything)

    async def aclose(self) -> None:
        """Shutdown: lost creations looked for, one last try for every stop still failing."""
        await self.ledger.close()
        await self.client.aclose()
