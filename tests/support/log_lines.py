"""The exact lines the app writes, as patterns, so a test waiting for one is not
satisfied by a look-alike: an error that says "The session was closed", or the same
line from an earlier action (count the matches before, wait for one more)."""

from __future__ import annotations

import re

STAMP = r"\d\d:\d\d:\d\d  "  # the status log's time stamp (avatar_core/session/status_log.py)
SESSION = r"[0-9a-f]{8}"  # AvatarSession.short_id


def session_closed(reason: str) -> re.Pattern[str]:
    """The status line AvatarSession._teardown writes: `Session <id> closed (<reason>).`"""
    return re.compile(rf"^{STAMP}Session {SESSION} closed \({re.escape(reason)}\)\.$", re.MULTILINE)


def session_created() -> re.Pattern[str]:
    """The status line New writes once the session exists: `Session <id> created (...). Click Start ...`"""
    return re.compile(rf"^{STAMP}Session {SESSION} created \(.+\)\. Click Start to begin the stream\.$", re.MULTILINE)


def server_closed(reason: str, live: int | None = None) -> re.Pattern[str]:
    """The app's own log line (SessionManager._forget): `session <id> closed: <reason> (<n> live)`."""
    count = r"\d+" if live is None else str(live)
    return re.compile(rf"INFO avatar_core\.session\.manager: session {SESSION} closed: {re.escape(reason)} "
                      rf"\({count} live\)$", re.MULTILINE)


def count(pattern: str | re.Pattern[str], text: str) -> int:
    """How many lines of `text` hold `pattern` (a substring, or a compiled pattern searched per line)."""
    return sum(1 for line in text.splitlines() if holds(line, pattern))


def holds(line: str, pattern: str | re.Pattern[str]) -> bool:
    return pattern in line if isinstance(pattern, str) else pattern.search(line) is not None
