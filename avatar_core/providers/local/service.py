"""The offline provider: builds a session's LocalAvatar from the bundled looks and voices."""

from __future__ import annotations

import asyncio
import logging
import time

from ...events import EventSink
from ...media.keying import warm_up as warm_up_keying
from ...settings import Settings
from ..base import AvatarService, Choices, Quality
from .avatar import LocalAvatar
from .face import LOOKS, face_sprites
from .speech import default_catalog

log = logging.getLogger(__name__)


class LocalService(AvatarService):
    name = "local"
    label = "the built-in offline avatar"

    def __init__(self, default_quality: Quality = "low") -> None:
        self._default_quality = default_quality

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalService:
        return cls(settings.default_quality)

    def initial_choices(self) -> Choices:
        return Choices([(look.label, look.look_id) for look in LOOKS.values()], default_catalog().choices())

    async def create(self, avatar_id: str, voice_id: str, quality: Quality, events: EventSink) -> LocalAvatar:
        # drawing sprites takes a moment: off the loop
        return await asyncio.to_thread(make_local_avatar, avatar_id, voice_id, quality, events)

    def warm_up(self) -> None:
        """Compile the key, draw the default sprites and load the voices ahead of the first
        click, so New and the first Repeat are quick."""
        began = time.monotonic()
        warm_up_keying()
        face_sprites(self.initial_choices().default_avatar or "ava", self._default_quality)
        default_catalog().warm_up()
        log.info("warm-up done in %.1f s: key compiled, sprites drawn, voices loaded", time.monotonic() - began)


def make_local_avatar(avatar_id: str, voice_id: str, quality: Quality, events: EventSink) -> LocalAvatar:
    voice = default_catalog().get(voice_id)  # refuses unknown IDs, listing valid ones
    return LocalAvatar(avatar_id, voice, quality, events)
