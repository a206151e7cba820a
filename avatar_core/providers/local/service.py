"""The offline provider: builds a session's LocalAvatar from the bundled looks and voices."""

from __future__ import annotations

import asyncio
import logging
import time

from ...events import EventSink
from ...media.keying import warm_up as warm_up_keying
from ...settings import LipSync, Settings
from ..base import AvatarService, Choices, Quality
from .avatar import LocalAvatar
from .face import LOOKS, face_sprites
from .speech import default_catalog
from .visemes import warm_up as warm_up_visemes

log = logging.getLogger(__name__)


class LocalService(AvatarService):
    name = "local"
    label = "the built-in offline avatar"
    # a viewer's audio waits in its jitter buffer, its video hardly: one frame back keeps
    # the lips over their own sound (BENCHMARKS.md "Lip sync")
    video_delay_ms = 40

    def __init__(self, default_quality: Quality = "low", lip_sync: LipSync = "phonemes") -> None:
        self._default_quality = default_quality
        self._lip_sync = lip_sync

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalService:
        return cls(settings.default_quality, settings.lip_sync)

    def initial_choices(self) -> Choices:
        return Choices([(look.label, look.look_id) for look in LOOKS.values()], default_catalog().choices())

    async def create(self, avatar_id: str, voice_id: str, quality: Quality, events: EventSink) -> LocalAvatar:
        # drawing sprites takes a moment: off the loop
        return await asyncio.to_thread(make_local_avatar, avatar_id, voice_id, quality, events, self._lip_sync)

    def warm_up(self) -> None:
        """Compile the key, draw the default sprites and load the voices ahead of the first
        click, so New and the first Repeat are quick."""
        began = time.monotonic()
        warm_up_keying()
        face_sprites(self.initial_choices().default_avatar or "ava", self._default_quality)
        default_catalog().warm_up()
        warm_up_visemes()
        log.info("warm-up done in %.1f s: key compiled, sprites drawn, voices and lip sync loaded",
                 time.monotonic() - began)


def make_local_avatar(avatar_id: str, voice_id: str, quality: Quality, events: EventSink,
                      lip_sync: LipSync = "phonemes") -> LocalAvatar:
    voice = default_catalog().get(voice_id)  # refuses unknown IDs, listing valid ones
    return LocalAvatar(avatar_id, voice, quality, events, lips_follow_phonemes=lip_sync == "phonemes")
