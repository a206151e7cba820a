"""One session's conversation: the history sent to the LLM and the transcript shown
in the page. Talk streams the reply and hands each sentence to the avatar the moment
it is complete, so speech starts after the first sentence, not the whole reply."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from .llm import LLM
from .sentences import SentenceSplitter

Message = dict[str, Any]


class Conversation:
    def __init__(self, system_prompt: str, max_history_turns: int) -> None:
        self._system = {"role": "system", "content": system_prompt}
        self._max_turns = max_history_turns
        self.history: list[Message] = []  # user and assistant messages, as the LLM saw them
        self.transcript: list[Message] = []  # what the page shows (gr.Chatbot, type="messages")
        self.version = 0  # bumped on every transcript change, so pollers can skip unchanged ones
        self.task: asyncio.Task[str] | None = None  # the Talk in progress

    @property
    def busy(self) -> bool:
        return self.task is not None and not self.task.done()

    def _show(self, role: str, content: str) -> Message:
        message = {"role": role, "content": content}
        self.transcript.append(message)
        self.version += 1
        return message

    def user_said(self, text: str) -> None:
        self._show("user", text)

    def avatar_said(self, text: str) -> None:
        """A reply made elsewhere (HeyGen's own LLM)."""
        self._show("assistant", text)
        self.history += [{"role": "assistant", "content": text}]

    async def talk(self, llm: LLM, text: str, say: Callable[[str], Awaitable[None]]) -> str:
        """Ask, and say each sentence as it completes. Returns what was said."""
        recent = self.history[-2 * self._max_turns :] if self._max_turns else []
        messages = [self._system, *recent, {"role": "user", "content": text}]
        self.user_said(text)
        shown = self._show("assistant", "…")
        said: list[str] = []
        splitter = SentenceSplitter()

        async def hand_over(sentence: str) -> None:
            await say(sentence)
            said.append(sentence)
            shown["content"] = " ".join(said)
            self.version += 1

        try:
            async for delta in llm.stream(messages):
                for sentence in splitter.feed(delta):
                    await hand_over(sentence)
            if rest := splitter.flush():
                await hand_over(rest)
        except asyncio.CancelledError:
            shown["content"] = (" ".join(said) + " …").strip() + " (interrupted)"
            self.version += 1
            raise
        finally:
            if said:  # the next turn knows what the avatar actually said
                self.history += [{"role": "user", "content": text}, {"role": "assistant", "content": " ".join(said)}]
            elif shown["content"] == "…":
                self.transcript.remove(shown)
                self.version += 1
        return " ".join(said)
