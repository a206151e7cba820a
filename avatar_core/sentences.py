"""Cuts streamed text into sentences as it arrives, so the avatar can start on the
first one while the rest is still being generated.

A sentence ends at . ! ? or … followed by a space and then something that can start
a sentence. "Dr. Smith", "e.g. this", "J. K. Rowling" and "3.5" are not ends.
"""

from __future__ import annotations

import re

TITLES = {"mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "etc", "e.g", "i.e", "inc", "ltd",
          "co", "no", "fig", "approx", "dept", "est", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep",
          "sept", "oct", "nov", "dec"}
_END = re.compile(r"[.!?…]+[\"”’)\]]*(?=\s)")


class SentenceSplitter:
    def __init__(self) -> None:
        self._buffer = ""

    def feed(self, text: str) -> list[str]:
        """Add streamed text; return the sentences it completed."""
        self._buffer += text
        out, start = [], 0
        for match in _END.finditer(self._buffer):
            rest = self._buffer[match.end():].lstrip()
            if not rest:
                break  # what follows has not arrived yet: decide later
            if self._is_end(self._buffer[start:match.end()], rest[0]):
                out.append(self._buffer[start:match.end()].strip())
                start = match.end()
        self._buffer = self._buffer[start:]
        while "\n" in self._buffer:  # a line break always ends a sentence
            line, self._buffer = self._buffer.split("\n", 1)
            if line.strip():
                out.append(line.strip())
        return out

    def flush(self) -> str | None:
        """What is left when the stream ends."""
        rest, self._buffer = self._buffer.strip(), ""
        return rest or None

    @staticmethod
    def _is_end(sentence: str, next_char: str) -> bool:
        if next_char.islower():
            return False
        if not sentence.rstrip("\"”’)]").endswith("."):
            return True
        word = sentence.rstrip("\"”’)]").rstrip(".").split()[-1].lstrip("(\"“'‘").lower() if sentence.split() else ""
        return not (word in TITLES or (len(word) == 1 and word.isalpha()))
