"""Which provider AVATAR_PROVIDER names: one line per provider."""

from __future__ import annotations

from collections.abc import Callable

from ..settings import Settings
from .base import AvatarService
from .heygen.service import HeyGenService
from .liveavatar.service import LiveAvatarService
from .local.service import LocalService

PROVIDERS: dict[str, Callable[[Settings], AvatarService]] = {
    "local": LocalService.from_settings,
    "liveavatar": LiveAvatarService.from_settings,
    "heygen": HeyGenService.from_settings,
}


def service_for(settings: Settings) -> AvatarService:
    return PROVIDERS[settings.avatar_provider](settings)
