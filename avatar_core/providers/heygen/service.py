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
from .errors import HeyGenError, ReplyLostError, RequestTimeoutError, SessionClosedError, StillCreatingError

log = logging.getLogger(__name__)
CHOICES_TTL_S = 600
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
        self.ledger = UpstreamLedger("HeyGen", self._try_stop, self._list_sessions)

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
        async with self.ledger.creation(reply_lost=self._reply_lost) as record:
            session = await self.client.new_session(quality, avatar_id, (voice_id or "").strip() or None,
                                                    knowledge_base=self._knowledge_base)
            record(session.session_id)
        return HeyGenAvatar(self.client, session, avatar_id, quality, events, self._connect_timeout_s,
                            self._keep_alive_s, self.ledger.stop)

    @staticmethod
    def _reply_lost(exc: BaseException) -> bool:
        """A timeout, a broken connection, a gateway that gave up: HeyGen may have made it."""
        return isinstance(exc, RequestTimeoutError | ReplyLostError) or (
            isinstance(exc, HeyGenError) and exc.status in (502, 504))

    async def _try_stop(self, session_id: str) -> bool:
        try:
            await self.client.stop(session_id)
        except SessionClosedError:
            return True  # gone already: that is what we wanted
        except HeyGenError as exc:
            log.warning("streaming.stop for %s failed (%s)", session_id[:8], type(exc).__name__)
            return False
        return True

    async def _list_sessions(self) -> list[Listed]:
        listed = []
        for s in await self.client.list_sessions():
            created = s.get("created_at")
            listed.append(Listed(str(s.get("session_id")), float(created) if isinstance(created, int | float) else None,
                                 started=s.get("status") != "new"))  # anything else may be live
        return listed

    async def close_leftovers(self, keep: frozenset[str], everything: bool = False) -> int:
        """Stop this process's upstream sessions that no live session uses; `everything`
        (an operator's call): every session under the key but the live ones here."""
        if self.ledger.creating:
            raise StillCreatingError()
        if everything:
            return await self.client.close_sessions(keep=keep)
        return await self.ledger.close_ours(keep)

    async def aclose(self) -> None:
        """Shutdown: lost creations looked for, one last try for every stop still failing."""
        await self.ledger.close()
        await self.client.aclose()
