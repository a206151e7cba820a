"""One session's conversation: the history sent to the LLM and the transcript shown
in the page. Talk streams the reply and hands each sentence to the avatar the moment
it is complete, so speech starts after the first sentence, not the whole reply."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from .llm import LLM
from .sentences import SentenceSplitter

Message = dict[str, Any]
MAX_TRANSCRIPT = 200  # messages kept for the page; the LLM only ever sees the last few turns
MAX_ANSWER_CHARS = 3000  # spoken per answer at most (about three minutes): the rest is not read


class Conversation:
    def __init__(self, system_prompt: str, max_history_turns: int) -> None:
        self._system = {"role": "system", "content": system_prompt}
        self._max_turns = max_history_turns
        self.history: list[Message] = []  # user and assistant messages, as the LLM saw them
        self.transcript: list[Message] = []  # what the page shows (gr.Chatbot, type="messages")
        self.version = 0  # bumped on every transcript change, so pollers can skip unchanged ones
        self._native_question: str | None = None  # asked of HeyGen's own LLM, awaiting its answer

    def _show(self, role: str, content: str) -> Message:
        message = {"role": role, "content": content}
        self.transcript.append(message)
        del self.transcript[:-MAX_TRANSCRIPT]
        self.version += 1
        return message

    def _remember(self, question: str, answer: str) -> None:
        self.history += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        del self.history[: -2 * max(self._max_turns, 1)]

    def asked_elsewhere(self, text: str) -> None:
        """A question for HeyGen's own LLM: shown now, remembered with its answer."""
        self._show("user", text)
        self._native_question = text

    def answered_elsewhere(self, text: str) -> None:
        """HeyGen's own LLM answered (arrives through its data channel)."""
        self._show("assistant", text)
        if self._native_question is not None:
            self._remember(self._native_question, text)
            self._native_question = None

    def repeated(self, text: str) -> None:
        """Heard by voice with no LLM set up: the avatar said the same words back."""
        self._show("user", text)
        self._show("assistant", text)

    async def talk(self, llm: LLM, text: str, say: Callable[[str], Awaitable[None]]) -> str:
        """Ask, and say each sentence as it completes. Returns what was said."""
        recent = self.history[-2 * self._max_turns :] if self._max_turns else []
        messages = [self._system, *recent, {"role": "user", "content": text}]
        self._show("user", text)
        shown = self._show("assistant", "…")
        said: list[str] = []
        splitter = SentenceSplitter()
        budget = MAX_ANSWER_CHARS  # characters of the reply still to be read

        async def hand_over(sentence: str) -> None:
            await say(sentence)
            said.append(sentence)
            shown["content"] = " ".join(said)
            self.version += 1

        try:
            async with contextlib.aclosing(llm.stream(messages)) as stream:  # cancelled: the request closes now
                async for delta in stream:
                    for sentence in splitter.feed(delta[:budget]):
                        await hand_over(sentence)
                    budget -= len(delta)
                    if budget <= 0:
                        break  # an endless reply: what was read is said, the request closes
            if rest := splitter.flush():
                await hand_over(rest)
        except asyncio.CancelledError:
            shown["content"] = (" ".join(said) + " …").strip() + " (interrupted)"
            self.version += 1
            raise
        finally:
            if said:  # the next turn knows what the avatar was given to say
                self._remember(text, " ".join(said))
            elif shown["content"] == "…":
                self.transcript.remove(shown)
                self.version += 1
        return " ".join(said)
