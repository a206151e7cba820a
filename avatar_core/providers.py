"""Which avatar provider the app uses, chosen by AVATAR_PROVIDER: how to create one,
which avatar and voice IDs to offer, and provider-wide clean-up."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .face import LOOKS
from .heygen.client import HeyGenClient
from .heygen.errors import HeyGenError, StillCreatingError
from .heygen.provider import HeyGenAvatar
from .local_factory import create_local_avatar
from .provider import AvatarProvider
from .settings import Settings
from .speech import default_catalog

Choices = list[tuple[str, str]]  # (label, id)
CHOICES_TTL_S = 600


class LocalProviders:
    name = "local"

    async def create(self, avatar_id: str, voice_id: str, quality: str) -> AvatarProvider:
        return await create_local_avatar(avatar_id, voice_id, quality)

    async def choices(self) -> tuple[Choices, Choices, str | None]:
        """Avatar and voice choices, and a problem to report (None when all is well)."""
        return [(look.label, look.look_id) for look in LOOKS.values()], default_catalog().choices(), None

    async def close(self) -> None:
        pass


@dataclass
class HeyGenProviders:
    client: HeyGenClient
    connect_timeout_s: float = 15.0
    keep_alive_s: float = 30.0
    knowledge_base: str | None = None  # HeyGen's talk task answers with this as its instructions
    name: str = "heygen"
    _cached: tuple[float, Choices, Choices] | None = field(default=None, repr=False)
    _creating: int = 0  # upstream sessions being made: not yet ours, not leftovers either

    async def create(self, avatar_id: str, voice_id: str, quality: str) -> AvatarProvider:
        self._creating += 1
        try:
            return await HeyGenAvatar.create(self.client, avatar_id, voice_id, quality, self.connect_timeout_s,
                                             self.keep_alive_s, self.knowledge_base)
        finally:
            self._creating -= 1

    async def choices(self) -> tuple[Choices, Choices, str | None]:
        if self._cached and time.monotonic() - self._cached[0] < CHOICES_TTL_S:
            return self._cached[1], self._cached[2], None
        try:
            avatars = [(f"{a.get('pose_name') or a['avatar_id']}", str(a["avatar_id"]))
                       for a in await self.client.list_avatars() if a.get("avatar_id")]
            voices = [(f"{v.get('name') or v['voice_id']} ({v.get('language') or '?'})", str(v["voice_id"]))
                      for v in await self.client.list_voices()
                      if v.get("voice_id") and v.get("support_interactive_avatar", True)]
        except HeyGenError as exc:
            return [], [], f"Could not list HeyGen's avatars and voices: {exc} You can still type IDs."
        self._cached = (time.monotonic(), avatars, voices)
        return avatars, voices, None

    async def close_leaked(self, live_upstream_ids: frozenset[str]) -> int:
        """Stop upstream sessions under this key that no live session here owns."""
        if self._creating:
            raise StillCreatingError()
        return await self.client.close_sessions(keep=live_upstream_ids)

    async def close(self) -> None:
        await self.client.aclose()


def providers_for(settings: Settings) -> LocalProviders | HeyGenProviders:
    if settings.avatar_provider == "heygen" and settings.heygen_api_key is not None:
        client = HeyGenClient(settings.heygen_api_key.get_secret_value(), settings.heygen_base_url,
                              timeout_s=settings.heygen_timeout_s)
        return HeyGenProviders(client, settings.heygen_connect_timeout_s, settings.heygen_keep_alive_s,
                               settings.system_prompt)
    return LocalProviders()
