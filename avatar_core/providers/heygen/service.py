"""HeyGen (v1, the original demo's protocol) as a provider: one API client for the app,
lists from avatar.list and v2/voices, and clean-up of upstream sessions nobody owns."""

from __future__ import annotations

import asyncio
import logging
import time

from ...events import EventSink
from ...settings import Settings
from ...tasks import TaskOwner
from ..base import AvatarService, Capabilities, Choices, Quality
from .avatar import HeyGenAvatar
from .client import HeyGenClient
from .errors import HeyGenError, SessionClosedError, StillCreatingError

log = logging.getLogger(__name__)
CHOICES_TTL_S = 600
STOP_RETRY_FIRST_S = 1.0  # a stop that failed is tried again after this, then twice as long each time
STOP_RETRY_MAX_S = 60.0
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
        self._creating = 0  # upstream sessions being made: not yet ours, not leftovers either
        self._unstopped: set[str] = set()  # stops that failed: retried until HeyGen confirms
        self._tasks = TaskOwner("heygen-service")

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
        self._creating += 1
        try:
            session = await self.client.new_session(quality, avatar_id, (voice_id or "").strip() or None,
                                                    knowledge_base=self._knowledge_base)
        finally:
            self._creating -= 1
        return HeyGenAvatar(self.client, session, avatar_id, quality, events, self._connect_timeout_s,
                            self._keep_alive_s, self.stop_upstream)

    async def stop_upstream(self, session_id: str) -> None:
        """Stop an upstream session. If HeyGen does not confirm it, keep trying in the
        background (1 s, 2 s, 4 s ... at most a minute apart) until it does or says the
        session is gone: a failed stop must not leave it counting against the limit."""
        if not await self._try_stop(session_id):
            self._unstopped.add(session_id)
            self._tasks.spawn(self._retry_stop(session_id), f"stop-{session_id[:8]}")

    async def _try_stop(self, session_id: str) -> bool:
        try:
            await self.client.stop(session_id)
        except SessionClosedError:
            return True  # gone already: that is what we wanted
        except HeyGenError as exc:
            log.warning("streaming.stop for %s failed (%s); trying again", session_id[:8], type(exc).__name__)
            return False
        return True

    async def _retry_stop(self, session_id: str) -> None:
        delay = STOP_RETRY_FIRST_S
        while True:
            await asyncio.sleep(delay)
            if await self._try_stop(session_id):
                self._unstopped.discard(session_id)
                log.info("streaming.stop for %s done on a later try", session_id[:8])
                return
            delay = min(2 * delay, STOP_RETRY_MAX_S)

    async def close_leftovers(self, keep: frozenset[str]) -> int:
        """Stop upstream sessions under this key that no live session here owns."""
        if self._creating:
            raise StillCreatingError()
        return await self.client.close_sessions(keep=keep)

    async def aclose(self) -> None:
        """Shutdown: one last try for every stop still failing, then the client closes."""
        await self._tasks.cancel_all()
        for session_id in list(self._unstopped):
            if await self._try_stop(session_id):
                self._unstopped.discard(session_id)
        if self._unstopped:
            log.error("HeyGen did not confirm stopping %d session(s); they end at HeyGen's idle timeout",
                      len(self._unstopped))
        await self.client.aclose()
