"""LiveAvatar's errors as typed exceptions, each with one line for the person.

LiveAvatar's error replies are loosely documented (../shared/reference/liveavatar-api.md):
classification looks at the HTTP status, the envelope's code and the message together.
No message ever contains the key or a session token: only LiveAvatar's short message is kept.
"""

from __future__ import annotations

from ...errors import UpstreamError


class LiveAvatarError(UpstreamError):
    user_message = "LiveAvatar returned an error."


class BadKeyError(LiveAvatarError):
    user_message = ("LiveAvatar refused the API key. Check LIVEAVATAR_API_KEY on the server (a LiveAvatar "
                    "key: HeyGen keys do not work there).")


class NoCreditsError(LiveAvatarError):
    user_message = ("The LiveAvatar account is out of credits or over its quota. Add credits, or set "
                    "LIVEAVATAR_SANDBOX=1 to try sandbox avatars for free.")


class AvatarNotFoundError(LiveAvatarError):
    user_message = "LiveAvatar does not know that avatar ID (or it is not available to this key). Pick another one."


class ConcurrencyLimitError(LiveAvatarError):
    user_message = ("LiveAvatar's limit of concurrent sessions is reached. Close your open sessions "
                    "(the 'Close my open LiveAvatar sessions' button) or wait a few minutes.")


class SessionClosedError(LiveAvatarError):
    user_message = "LiveAvatar has already closed this session (idle or time limit). Click New to begin again."
    session_is_gone = True  # the app closes its side too


class ServerError(LiveAvatarError):
    user_message = "LiveAvatar's server had a problem. Try again in a moment."


class UnreachableError(ServerError):
    user_message = "LiveAvatar cannot be reached from this server. Check its network and LIVEAVATAR_BASE_URL."


class NotLiveAvatarError(ServerError):
    user_message = "The server at LIVEAVATAR_BASE_URL does not answer as LiveAvatar does; check that setting."


class ReplyLostError(ServerError):
    """The request was sent and the connection broke before its reply."""

    reply_may_be_lost = True


class RequestTimeoutError(LiveAvatarError):
    user_message = "LiveAvatar did not answer in time. Check the connection and try again."
    reply_may_be_lost = True



class RoomError(LiveAvatarError):
    """The LiveKit room could not be joined, or its media stopped; the detail says which."""

    def __str__(self) -> str:
        return self.detail


class BadRequestError(LiveAvatarError):
    user_message = "LiveAvatar refused the request."

    def __str__(self) -> str:
        return f"LiveAvatar refused the request: {self.detail}" if self.detail else self.user_message


def classify(status: int, code: int | None, message: str) -> LiveAvatarError:
    """The typed error for a non-success LiveAvatar reply."""
    text = (message or "").lower()
    if status in (401, 403) or "unauthorized" in text or "api key" in text or "forbidden" in text:
        return BadKeyError(message, status, code)
    if status == 402 or "credit" in text or "quota" in text or "insufficient" in text:
        return NoCreditsError(message, status, code)
    if status == 429 or "concurren" in text or "too many sessions" in text:
        return ConcurrencyLimitError(message, status, code)
    if "avatar" in text and ("not found" in text or "invalid" in text or "not exist" in text):
        return AvatarNotFoundError(message, status, code)
    if "session" in text and ("closed" in text or "not found" in text or "expired" in text or "ended" in text):
        return SessionClosedError(message, status, code)
    if status == 404:
        return AvatarNotFoundError(message, status, code)
    if status >= 500:
        return ServerError(message, status, code)
    return BadRequestError(message[:200], status, code)
