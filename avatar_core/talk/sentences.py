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
_NEXT_VISIBLE = re.compile(r"\s*(\S)")


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
        """Linear in len(text): positions only move forward and nothing after them is
        copied or searched twice (a megabyte-long reply must not stall the event loop)."""
        out: list[str] = []
        start = 0
        match = _END.search(text)
        while True:
            if match is not None and match.start() < start:  # a cut went past it
                match = _END.search(text, start)
            if match is not None and match.end() - start <= SOFT_LIMIT:
                following = _NEXT_VISIBLE.match(text, match.end())
                if following is None:
                    break  # what follows has not arrived yet: decide later
                if self._is_end(text[start:match.end()], following.group(1)):
                    out.append(text[start:match.end()])
                    start = match.end()
                match = _END.search(text, match.end())
                continue
            if len(text) - start <= SOFT_LIMIT:
                break
            # no end in sight: cut at the last clause mark, else at a word, else anywhere
            limit = start + SOFT_LIMIT
            cut = max(text.rfind(mark, start, limit) for mark in (", ", "; ", ": ", " — "))
            cut = cut + 1 if cut > start + SOFT_LIMIT // 3 else text.rfind(" ", start, limit)
            cut = cut if cut > start else limit
            out.append(text[start:cut])
            start = cut
        tail = text[start:]
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
