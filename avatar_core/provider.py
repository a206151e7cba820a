"""The contract every avatar provider meets (in the spirit of LiveKit agents' avatar
module): it is a media source for the session's clock, and it takes speech commands.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from .media import MediaSource


class ProviderError(Exception):
    """A provider failed in a way the person should hear about; str() is one clear line."""

    session_is_gone = False  # True: the provider's session ended upstream, so ours closes too


class SpeechQueueFullError(RuntimeError):
    """speak() refused: too much is already waiting to be spoken."""


class AvatarProvider(MediaSource, Protocol):
    on_event: Callable[[str], None] | None
    """Set by the session: where the provider reports what happens in the background."""

    @property
    def description(self) -> str:
        """One line for the status log, e.g. "Ava, voice Heart, low 640x360"."""
        ...

    async def start(self) -> None:
        """Begin media (Start was clicked); raises ProviderError if it cannot."""
        ...

    async def speak(self, text: str) -> None:
        """Queue `text` to be spoken; returns once it is accepted, not when it is said."""
        ...

    async def interrupt(self) -> None:
        """Stop speaking now and drop whatever is queued."""
        ...

    async def close(self) -> None:
        """Release everything; idempotent."""
        ...
