"""The one error hierarchy: anything the person should hear about is an AvatarError,
whose str() is one clear line for the page (never a key, a token or a traceback).

    AvatarError
      UserError         the person can fix it (bad input, out-of-order click); nothing changed
        SpeechQueueFullError
      ProviderError     the avatar or a service behind it failed (HeyGen, the LLM, media)
        UpstreamError   a paid avatar service (HeyGen, LiveAvatar) refused or failed a request

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


class UpstreamError(ProviderError):
    """A paid avatar service's error; each provider's subclasses set `user_message`, the one
    line for the person (only the service's own short message is kept, as `detail`)."""

    user_message = "The avatar service returned an error."
    reply_may_be_lost = False  # the request went out and its reply did not come back

    def __init__(self, detail: str = "", status: int | None = None, code: int | None = None) -> None:
        super().__init__(detail or self.user_message)
        self.detail, self.status, self.code = detail, status, code

    def __str__(self) -> str:
        return self.user_message

    @property
    def may_have_been_done(self) -> bool:
        """The service may have done it anyway: no reply came, or a gateway gave up waiting."""
        return self.reply_may_be_lost or self.status in (502, 504)


def describe(exc: BaseException) -> str:
    """One line for the log: the message of an AvatarError, only the type of anything else."""
    return str(exc) if isinstance(exc, AvatarError) else f"an internal error ({type(exc).__name__})"
