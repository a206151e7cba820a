"""HeyGen's envelope errors as typed exceptions, each with one line for the person.

HeyGen's codes are loosely specified (see shared/reference/heygen-streaming-api.md),
so classification looks at the HTTP status, the code and the message together.
No message ever contains the key: only HeyGen's own short message is kept.
"""

from __future__ import annotations

from ...errors import UpstreamError


class HeyGenError(UpstreamError):
    user_message = "HeyGen returned an error."


class BadKeyError(HeyGenError):
    user_message = "HeyGen refused the API key. Check HEYGEN_API_KEY on the server."


class NoApiAccessError(HeyGenError):
    user_message = "This HeyGen account has no streaming API access. Check the plan or use a trial token."


class AvatarNotFoundError(HeyGenError):
    user_message = "HeyGen does not know that avatar ID (or it is not a streaming avatar). Pick another one."


class ConcurrentLimitError(HeyGenError):
    user_message = ("HeyGen's limit of concurrent sessions is reached. Close your open sessions "
                    "(the 'Close my open HeyGen sessions' button) or wait a few minutes.")


class SessionClosedError(HeyGenError):
    user_message = "HeyGen has already closed this session (idle or time limit). Click New to begin again."
    session_is_gone = True  # the app closes its side too


class ServerError(HeyGenError):
    user_message = "HeyGen's server had a problem. Try again in a moment."


class ReplyLostError(ServerError):
    """The request was sent and the connection broke before its reply."""

    reply_may_be_lost = True


class RequestTimeoutError(HeyGenError):
    user_message = "HeyGen did not answer in time. Check the connection and try again."
    reply_may_be_lost = True



class MediaError(HeyGenError):
    """HeyGen's media could not be received; the detail says which part failed."""

    def __str__(self) -> str:
        return self.detail


class BadRequestError(HeyGenError):
    user_message = "HeyGen refused the request."

    def __str__(self) -> str:
        return f"HeyGen refused the request: {self.detail}" if self.detail else self.user_message


def classify(status: int, code: int | None, message: str) -> HeyGenError:
    """The typed error for a non-success HeyGen reply."""
    text = (message or "").lower()
    if status == 401 or code == 400112 or "unauthorized" in text or "api key" in text:
        return BadKeyError(message, status, code)
    if code == 400599 or "no api access" in text or "access denied" in text:
        return NoApiAccessError(message, status, code)
    if code in (10007, 10015) or status == 429 or "concurrent" in text or "trial limit" in text:
        return ConcurrentLimitError(message, status, code)
    if code in (10013, 10003) or "avatar not found" in text or "deprecated" in text:
        return AvatarNotFoundError(message, status, code)
    if code == 10006 or "state wrong" in text or "session not found" in text or "closed" in text:
        return SessionClosedError(message, status, code)
    if status >= 500:
        return ServerError(message, status, code)
    return BadRequestError(message[:200], status, code)
