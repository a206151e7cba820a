"""Text from outside made safe to keep, show and send on: valid Unicode, and bounded when
quoted back."""

from __future__ import annotations

import json
import re
from typing import Any

MAX_ECHO_CHARS = 40  # of a bad value, quoted back in a message
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # all but tab and newline


def valid_text(value: str) -> str:
    """`value` as valid Unicode: lone surrogates (which cannot be encoded, so would break
    every later JSON reply) become U+FFFD, and control characters but tab and newline go."""
    value = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return _CONTROL.sub("", value)


def shown(value: object) -> str:
    """A value quoted in a message: its repr, cut to MAX_ECHO_CHARS."""
    text = repr(value)
    return text if len(text) <= MAX_ECHO_CHARS else text[: MAX_ECHO_CHARS - 1] + "…"


def json_object(raw: str | bytes) -> dict[str, Any] | None:
    """A JSON object received from outside, or None for anything else (to be ignored)."""
    try:
        value = json.loads(raw)
    except (ValueError, TypeError):
        return None
    return value if isinstance(value, dict) else None
