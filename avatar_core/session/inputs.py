"""What a page or an API caller sends, checked once, at the edge (the controller's first
step): the type and the size of every value, with one message that says what was wrong;
and text made valid Unicode where it enters (the page, an LLM, an upstream avatar).
A hostile caller can send any JSON: lists, numbers, null, megabytes, lone surrogates.
"""

from __future__ import annotations

from ..errors import UserError
from ..providers.base import MAX_TEXT_CHARS
from ..text import valid_text

MAX_ID_CHARS = 200  # an avatar or voice ID
MAX_CHOICE_CHARS = 40  # a quality, a background kind, a preset, an LLM choice, a colour
MAX_PATH_CHARS = 4096  # an uploaded file's server-side path, as Gradio hands it over


class InputError(UserError):
    """A value of the wrong type or size; nothing was changed."""


def text(value: object, what: str, limit: int) -> str:
    """A string of at most `limit` characters (None counts as empty), made valid."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(f"{what} must be text, not {_kind(value)}.")
    if len(value) > limit:
        raise InputError(f"{what} is {len(value)} characters; the limit is {limit}.")
    return valid_text(value)


def message(value: object) -> str:
    return text(value, "The message", MAX_TEXT_CHARS)


def identifier(value: object, what: str) -> str:
    """An ID; empty is the provider's to judge (HeyGen then uses its default avatar and voice)."""
    return text(value, what, MAX_ID_CHARS).strip()


def choice(value: object, what: str) -> str:
    return text(value, what, MAX_CHOICE_CHARS).strip()


def flag(value: object, what: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InputError(f"{what} must be true or false, not {_kind(value)}.")
    return value


def optional_path(value: object, what: str) -> str | None:
    path = text(value, what, MAX_PATH_CHARS)
    return path or None


def _kind(value: object) -> str:
    names = {list: "a list", dict: "an object", int: "a number", float: "a number", bool: "true or false",
             str: "text"}
    return names.get(type(value), type(value).__name__)
