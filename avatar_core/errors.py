"""The one error hierarchy: anything the person should hear about is an AvatarError,
whose str() is one clear line for the page (never a key, a token or a traceback).

    AvatarError
      UserError         the person can fix it (bad input, out-of-order click); nothing changed
        SpeechQueueFullError
      ProviderError     the avatar or a service behind it failed (HeyGen, the LLM, media)

`session_is_gone` says the avatar's session ended upstream, so ours closes too.
"""

from __future__ import annotations


class AvatarError(Exception):
    session_is_gone = False


class UserError(AvatarError):
    """Something the person can fix; the message says what. Nothing was changed."""


class SpeechQueueFullError(UserError):
    """speak() refused: too much is already waiting to be spoken (Talk waits for room instead)."""


class ProviderError(AvatarError):
    """A provider or a service it uses failed."""


def describe(exc: BaseException) -> str:
    """One line for the log: the message of an AvatarError, only the type of anything else."""
    return str(exc) if isinstance(exc, AvatarError) else f"an internal error ({type(exc).__name__})"
