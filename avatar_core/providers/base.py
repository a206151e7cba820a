"""The contract every avatar provider meets, in the spirit of LiveKit agents' avatar
module: a small set of abstract parts, and capabilities declared, never probed.

- `AvatarService`: one per app, for the provider AVATAR_PROVIDER names. It lists the
  avatars and voices, creates a session's avatar, and says what it can do.
- `Avatar`: one per session. A media source for the session's clock (a frame and
  its audio per tick) that takes speech commands and reports through its EventSink.

Adding a provider: one folder under providers/ and one line in registry.py.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Literal, get_args

from ..errors import UserError
from ..events import EventSink
from ..media.format import MediaTick
from ..media.frame_history import UpstreamVideo
from ..text import shown

Quality = Literal["low", "medium", "high"]
QUALITY_SIZES: dict[Quality, tuple[int, int]] = {  # (width, height): HeyGen's 360p, 480p, 720p
    "low": (640, 360),
    "medium": (854, 480),
    "high": (1280, 720),
}
Choice = tuple[str, str]  # (label, id)
MAX_TEXT_CHARS = 1000  # per message, for every provider: HeyGen's task limit


class UnknownQualityError(UserError):
    pass


def parse_quality(value: object) -> Quality:
    """The quality named by `value`, or UnknownQualityError listing the valid ones."""
    for quality in get_args(Quality):
        if value == quality:
            return quality
    valid = ", ".join(f"{q} ({w}x{h})" for q, (w, h) in QUALITY_SIZES.items())
    raise UnknownQualityError(f"Unknown quality {shown(value)}. Valid qualities: {valid}.")


@dataclass(frozen=True)
class Capabilities:
    own_llm: str | None = None
    """A label ("HeyGen's LLM") when the provider can answer with its own LLM: Talk then
    offers it beside ours. None: Talk always uses our LLM."""
    upstream_lists: bool = False
    """Avatar and voice lists come from upstream, fetched when a page loads."""
    upstream_sessions: bool = False
    """Sessions are opened upstream and can leak (a crash, another tool): the page offers
    to close the ones no live session here owns."""


@dataclass(frozen=True)
class Choices:
    avatars: list[Choice] = field(default_factory=list)
    voices: list[Choice] = field(default_factory=list)

    @property
    def default_avatar(self) -> str | None:
        return self.avatars[0][1] if self.avatars else None

    @property
    def default_voice(self) -> str | None:
        return self.voices[0][1] if self.voices else None


class Avatar(ABC):
    """One session's avatar. Every method but tick() runs on the event loop; tick()
    runs on the media clock's thread and must not block."""

    upstream_id: str | None = None  # the upstream session this avatar holds open, if any

    @property
    @abstractmethod
    def size(self) -> tuple[int, int]: ...

    @property
    @abstractmethod
    def description(self) -> str:
        """One line for the status log, e.g. "Ava, voice Heart, low 640x360"."""

    @abstractmethod
    def tick(self, index: int) -> MediaTick: ...

    @property
    def queued_audio_s(self) -> float | None:
        """Speech made and waiting in the avatar to be ticked out, for the stream stats;
        None when it cannot tell. Read once a second from the event loop: keep it cheap."""
        return None

    def upstream_video(self) -> UpstreamVideo | None:
        """A relayed avatar's upstream frame rate and lip-sync hold, for the stream stats;
        None for an avatar drawn here."""
        return None

    async def start(self) -> None:
        """Begin media (Start was clicked); raises ProviderError if it cannot."""
        return None  # optional: nothing to connect by default

    @abstractmethod
    async def speak(self, text: str) -> None:
        """Queue `text` to be spoken; returns once accepted, not when said.
        SpeechQueueFullError when too much is waiting."""

    async def talk(self, text: str) -> None:
        """Have the provider's own LLM answer (only with Capabilities.own_llm); the answer
        arrives as a NativeReply event."""
        raise UserError("This avatar has no LLM of its own; answer with ours.")

    @abstractmethod
    async def interrupt(self) -> None:
        """Stop speaking now and drop whatever is queued."""

    @abstractmethod
    async def close(self) -> None:
        """Release everything, upstream included; idempotent."""


class AvatarService(ABC):
    name: str  # its AVATAR_PROVIDER value
    label: str  # for people: "HeyGen"
    capabilities = Capabilities()
    close_timeout_s = 10.0  # how long closing every session (and itself) may take at shutdown
    # video held back to line it up with audio at the viewer, unless VIDEO_DELAY_MS says otherwise:
    # a relay's own hold (measured with none) already lines its lips up
    video_delay_ms = 0

    @abstractmethod
    def initial_choices(self) -> Choices:
        """What the page offers before anything is fetched."""

    async def choices(self) -> Choices:
        """The current avatar and voice lists (from upstream with `upstream_lists`);
        ProviderError when they cannot be had."""
        return self.initial_choices()

    @abstractmethod
    async def create(self, avatar_id: str, voice_id: str, quality: Quality, events: EventSink) -> Avatar:
        """A new session's avatar; UserError for bad IDs, ProviderError from upstream."""

    async def close_leftovers(self, keep: frozenset[str], everything: bool = False) -> int:
        """With `upstream_sessions`: stop the upstream sessions this process opened that are
        not in `keep` (`everything`: all under the key but `keep`, for an operator); how many."""
        raise UserError(f"There are no upstream sessions: the avatar is {self.label}.")

    def warm_up(self) -> None:
        """Heavy one-time set-up, run in a thread at start-up so the first click is quick."""
        return None  # optional

    async def aclose(self) -> None:
        """Release what the service holds (clients); sessions are closed before this."""
        return None  # optional
