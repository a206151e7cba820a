"""The provider contract: what a provider declares decides what the page and the
controller offer; neither names a provider."""

from __future__ import annotations

import asyncio
import re
import typing
from pathlib import Path

import pytest

from app import build_app
from avatar_core.errors import UserError
from avatar_core.events import EventSink, NativeReply, ViewerChanged
from avatar_core.providers.base import Avatar, AvatarService, Capabilities, Choices, Quality
from avatar_core.providers.local.service import LocalService
from avatar_core.providers.registry import PROVIDERS
from avatar_core.server.turn import IceConfiguration
from avatar_core.settings import Settings
from avatar_core.talk.llm import NOT_CONFIGURED
from avatar_core.voice.recognizer import Recognizer
from tests.support.controllers import started_controller
from tests.support.fake_avatars import BlankAvatar

ROOT = Path(__file__).resolve().parent.parent


class EchoAvatar(BlankAvatar):
    """An avatar whose own LLM answers by echoing, through the event path."""

    def __init__(self, events: EventSink, upstream_id: str) -> None:
        super().__init__(upstream_id)
        self._events = events

    async def talk(self, text: str) -> None:
        self._events.emit(NativeReply(f"You asked: {text}"))


class EchoService(AvatarService):
    name, label = "echo", "Echo"
    capabilities = Capabilities(own_llm="Echo's LLM", upstream_lists=True, upstream_sessions=True)

    def __init__(self) -> None:
        self.kept: list[tuple[frozenset[str], bool]] = []
        self.created = 0

    def initial_choices(self) -> Choices:
        return Choices()

    async def choices(self) -> Choices:
        return Choices([("Echo", "echo-1")], [("Voice", "v-1")])

    async def create(self, avatar_id: str, voice_id: str, quality: Quality, events: EventSink) -> Avatar:
        self.created += 1
        return EchoAvatar(events, f"upstream-{self.created}")

    async def close_leftovers(self, keep: frozenset[str], everything: bool = False) -> int:
        self.kept.append((keep, everything))
        return 3


async def live(c, key: str):
    choices = await c.service.choices()
    await c.new_session(key, choices.default_avatar, choices.default_voice, "low")
    await c.start(key)
    session = c.sessions.get(c.browser(key).session_id)
    session.events.emit(ViewerChanged("video", attached=True))
    session.events.emit(ViewerChanged("audio", attached=True))
    await asyncio.sleep(0.01)
    return session


def test_a_provider_without_its_own_llm_gets_ours_only():
    async def body():
        c = started_controller()
        try:
            await live(c, "b")
            with pytest.raises(UserError, match=re.escape(NOT_CONFIGURED)):
                await c.talk("b", "Hello?")  # our LLM: not configured here
            with pytest.raises(UserError, match="Unknown choice of LLM 'local'"):
                await c.talk("b", "Hello?", "local")  # the provider's name offers nothing
            assert c.transcript("b")[1] == []
        finally:
            await c.sessions.close_all("test over")

    asyncio.run(body())


def test_a_provider_with_its_own_llm_answers_into_the_transcript_through_events():
    async def body():
        c = started_controller(service=EchoService())
        try:
            await live(c, "b")
            assert await c.talk("b", "What is this?", "echo") == ""
            await asyncio.sleep(0.01)  # the answer arrives as an event, on the loop
            assert c.transcript("b")[1] == [{"role": "user", "content": "What is this?"},
                                            {"role": "assistant", "content": "You asked: What is this?"}]
            with pytest.raises(UserError, match=re.escape(NOT_CONFIGURED)):
                await c.talk("b", "And ours?")  # our LLM is still the default, and not set up
        finally:
            await c.sessions.close_all("test over")

    asyncio.run(body())


def test_answers_from_applies_to_what_is_said_by_voice_as_to_text():
    async def body():
        c = started_controller(service=EchoService())
        try:
            session = await live(c, "b")
            c.set_answer_with("b", "echo")
            await c.said("b", session, "What is this?")  # a spoken turn's words, as the listener hands them over
            await asyncio.sleep(0.01)
            assert c.transcript("b")[1][-2:] == [{"role": "user", "content": "What is this?"},
                                                 {"role": "assistant", "content": "You asked: What is this?"}]
            c.set_answer_with("b", "llm")  # ours, not set up here: the words are said back
            await c.said("b", session, "And now?")
            assert c.transcript("b")[1][-2:] == [{"role": "user", "content": "And now?"},
                                                 {"role": "assistant", "content": "And now?"}]
            assert "(no LLM is set up, so the avatar says it back)" in c.status("b")[1]
            with pytest.raises(UserError, match="Unknown choice of LLM 'local'"):
                c.set_answer_with("b", "local")
        finally:
            await c.sessions.close_all("test over")

    asyncio.run(body())


def test_upstream_sessions_get_the_clean_up_action_keeping_the_live_ones():
    async def body():
        service = EchoService()
        token = "operator-" + "x" * 20
        c = started_controller(service=service, operator_token=token)
        local = started_controller()
        try:
            await live(c, "a")
            await live(c, "b")
            live_ones = frozenset({"upstream-1", "upstream-2"})
            assert await c.close_leaked_upstream("a") == 3  # no token: this server's own only
            assert c.status("a")[1].endswith("Closed 3 leftover Echo session(s) that this server opened.")
            for wrong in ("operator-" + "y" * 20, token[:-1], "é" * 29, ["x"]):
                with pytest.raises(UserError, match="operator token"):
                    await c.close_leaked_upstream("b", wrong)
            assert await c.close_leaked_upstream("a", token) == 3  # the operator: everything under the key
            assert c.status("a")[1].endswith("Closed 3 leftover Echo session(s) under this key.")
            assert service.kept == [(live_ones, False), (live_ones, True)]
            with pytest.raises(UserError, match="There are no upstream sessions"):
                await local.close_leaked_upstream("a")
        finally:
            await c.sessions.close_all("test over")
            await local.sessions.close_all("test over")

    asyncio.run(body())


def page(service: AvatarService) -> dict:
    settings = Settings(_env_file=None)
    demo, _ = build_app(settings, IceConfiguration(settings), service, Recognizer())
    return demo.config


@pytest.mark.parametrize("service, own_llm, clean_up", [(LocalService(), False, False), (EchoService(), True, True)])
def test_the_page_offers_what_the_provider_declares(service, own_llm, clean_up):
    config = page(service)
    apis = {d.get("api_name") for d in config["dependencies"]}
    assert (f"close_leaked_{service.name}_sessions" in apis) is clean_up
    components = {c.get("props", {}).get("label"): c["props"] for c in config["components"]}
    assert components["Answers from"]["visible"] is own_llm
    assert [c[1] for c in components["Answers from"]["choices"]] == (["llm", service.name] if own_llm else ["llm"])
    buttons = {c["props"].get("elem_id"): c["props"] for c in config["components"]}
    assert buttons["leaked-btn"]["visible"] is clean_up
    if not service.capabilities.upstream_lists:  # offered at once; upstream lists come when a page loads
        assert [c[1] for c in components["Avatar ID"]["choices"]] == [a for _, a in service.initial_choices().avatars]


def test_no_provider_is_named_or_probed_where_the_page_and_the_controller_are():
    names = [*PROVIDERS, "HeyGen"]
    for path in (ROOT / "app.py", ROOT / "avatar_core" / "session" / "controller.py"):
        code = "\n".join(line.split("#")[0] for line in path.read_text().splitlines())  # comments may name them
        assert not re.search(r"\b(hasattr|getattr)\(", code), path
        for name in names:
            assert not re.search(rf"\b{name}\b", code, re.IGNORECASE), (path, name)


def test_every_provider_setting_has_a_registry_line():
    names = typing.get_args(Settings.model_fields["avatar_provider"].annotation)
    assert set(names) == set(PROVIDERS)
