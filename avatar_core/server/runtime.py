"""The server's event loop and worker threads, set up once at start-up (Gradio's
lifespan, or a test's own loop), and the one place where another thread (the media
clock, fastrtc's audio executor) hands work over to the event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ..tasks import TaskOwner

T = TypeVar("T")
# Per live session, threads the default executor must have: fastrtc parks each audio
# stream in one, and aiortc encodes video and audio there; plus synthesis and set-up.
THREADS_PER_SESSION = 4
THREADS_SPARE = 8


class Runtime:
    def __init__(self, loop: asyncio.AbstractEventLoop, max_sessions: int) -> None:
        self.loop = loop
        # the default executor (cores + 4 threads) would starve with a few sessions
        self.executor = ThreadPoolExecutor(THREADS_PER_SESSION * max_sessions + THREADS_SPARE,
                                           thread_name_prefix="avatar")
        loop.set_default_executor(self.executor)
        self.tasks = TaskOwner("server")  # work handed over from threads, e.g. closing a peer

    @classmethod
    def on_running_loop(cls, max_sessions: int) -> Runtime:
        return cls(asyncio.get_running_loop(), max_sessions)

    def hand_over(self, callback: Callable[..., object], *args: Any) -> None:
        """Run `callback(*args)` on the event loop soon; safe from any thread, in order."""
        with contextlib.suppress(RuntimeError):  # the loop has closed: the server is gone
            self.loop.call_soon_threadsafe(callback, *args)

    def run_from_thread(self, coro: Coroutine[Any, Any, T], timeout_s: float) -> T:
        """Run `coro` on the loop from another thread (shutdown) and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)
