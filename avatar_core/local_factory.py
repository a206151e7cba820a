"""Builds the offline avatar for a new session."""

from __future__ import annotations

import asyncio
import logging
import time

from .face import face_sprites
from .keying import warm_up as warm_up_keying
from .local_avatar import LocalAvatar
from .speech import default_catalog

log = logging.getLogger(__name__)


def make_local_avatar(avatar_id: str, voice_id: str, quality: str) -> LocalAvatar:
    voice = default_catalog().get(voice_id)  # refuses unknown IDs, listing valid ones
    return LocalAvatar(avatar_id, voice, quality)


async def create_local_avatar(avatar_id: str, voice_id: str, quality: str) -> LocalAvatar:
    """The SessionManager's factory: drawing sprites takes a moment, so off the loop."""
    return await asyncio.to_thread(make_local_avatar, avatar_id, voice_id, quality)


def warm_up(avatar_id: str, voice_id: str, quality: str) -> None:
    """Compile the key, draw the default sprites and load the voices ahead of the first
    click, so New and the first Repeat are quick."""
    began = time.monotonic()
    warm_up_keying()
    face_sprites(avatar_id, quality)
    for voice in default_catalog().voices.values():
        for _ in voice.sentences("Hi."):
            pass
    log.info("warm-up done in %.1f s: key compiled, sprites drawn, voices loaded", time.monotonic() - began)
