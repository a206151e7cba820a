"""Cuts streamed text into sentences as it arrives, so the avatar can start on the
first one while the rest is still being generated.

A sentence ends at . ! ? or … followed by a space and then something that can start
a sentence, or at a line break. "Dr. Smith", "e.g. this", "J. K. Rowling", "3.5" and a
list's "1." are not ends. Markdown marks are dropped (they are not meant to be said),
and a long run with no end is cut at a comma or a space so speech is never held back.
"""

from __future__ import annotations

import re

TITLES = {"mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "etc", "e.g", "i.e", "inc", "ltd",
          "fig", "approx", "dept", "est"}
SOFT_LIMIT = 200  # characters before a sentence with no end is cut at a clause or a word
_END = re.compile(r"[.!?…]+[\"”’)\]]*(?=\s)")
_MARKDOWN = re.compile(r"(\*\*|__|`+|^#+\s*|^\s*[-*+]\s+)", re.MULTILINE)
_SPEAKABLE = re.compile(r"\w")


def _clean(sentence: str) -> str | None:
    sentence = " ".join(_MARKDOWN.sub("", sentence.strip()).split())
    return sentence if _SPEAKABLE.search(sentence) else None


class SentenceSplitter:
    def __init__(self) -> None:
        self._buffer = ""

    def feed(self, text: str) -> list[str]:
        """Add streamed text; return the sentences it completed."""
        self._buffer += text
        out: list[str] = []
        *lines, self._buffer = self._buffer.split("\n")  # a line break always ends a sentence
        for line in lines:
            out += self._sentences(line, final=True)
        out += self._sentences(self._buffer, final=False)
        return out

    def flush(self) -> str | None:
        """What is left when the stream ends."""
        rest, self._buffer = self._buffer, ""
        return " ".join(self._sentences(rest, final=True)) or None

    def _sentences(self, text: str, final: bool) -> list[str]:
        out, start = [], 0
        for match in _END.finditer(text):
            rest = text[match.end():].lstrip()
            if not rest:
                break  # what follows has not arrived yet: decide later
            if self._is_end(text[start:match.end()], rest[0]):
                out.append(text[start:match.end()])
                start = match.end()
        tail = text[start:]
        while len(tail) > SOFT_LIMIT:  # no end in sight: cut at the last clause mark, else word
            cut = max(tail.rfind(mark, 0, SOFT_LIMIT) for mark in (", ", "; ", ": ", " — "))
            cut = cut + 1 if cut > SOFT_LIMIT // 3 else tail.rfind(" ", 0, SOFT_LIMIT)
            cut = cut if cut > 0 else SOFT_LIMIT
            out.append(tail[:cut])
            tail = tail[cut:]
        if final:
            out.append(tail)
        elif start or len(tail) != len(text):
            self._buffer = tail
        return [s for s in (_clean(piece) for piece in out) if s]

    @staticmethod
    def _is_end(sentence: str, next_char: str) -> bool:
        if next_char.islower() or next_char in ".…":  # "think . . . yes" goes on
            return False
        body = sentence.rstrip("\"”’)]")
        if not body.endswith("."):
            return True
        words = body.rstrip(".").split()
        if not words:
            return False  # a lone "." or ". . ."
        word = words[-1].lstrip("(\"“'‘").lower()
        if len(words) == 1 and word.isdigit():
            return False  # "1." at the start of a list item
        return not (word in TITLES or (len(word) == 1 and word.isalpha()))
