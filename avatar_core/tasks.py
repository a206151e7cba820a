"""Tasks with an owner (pipecat's task manager, in small): whatever a session or a
provider starts in the background, its close() cancels and awaits, and a task that
fails is logged instead of vanishing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class TaskOwner:
    def __init__(self, owner: str) -> None:
        self._owner = owner
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, T], name: str, awaited: bool = False) -> asyncio.Task[T]:
        """`awaited`: the caller awaits the task and handles its failure (not logged here)."""
        task = asyncio.get_running_loop().create_task(coro, name=f"{self._owner}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._finished_awaited if awaited else self._finished)
        return task

    def _finished_awaited(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("task %s failed", task.get_name(), exc_info=exc)

    async def cancel(self, task: asyncio.Task[Any] | None) -> None:
        """Cancel one task and wait until it has ended (its clean-up has run)."""
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task})

    async def cancel_all(self) -> None:
        """Cancel every task still running and wait for all of them; idempotent."""
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
