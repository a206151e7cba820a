"""Letting Gradio 5's queue forget events it has finished.

Gradio 5.50 keeps every queued event in `Queue.event_ids_to_events` (with its HTTP
request, connection and payload), `event_analytics` and, as a finished task,
`_asyncio_tasks`, for the life of the process:
memory that grows with every click and never comes back (BENCHMARKS.md, Memory).
Gradio fixed this in 6 (gradio-app/gradio#13756), but fastrtc 0.0.34 needs
gradio < 6, so until then finished events are dropped here, as that fix does. An
event whose result the page has not been sent yet (still in
`pending_event_ids_session`, which Gradio empties itself as it sends) is dropped
after a later event finishes. Still kept, as in Gradio 5: events whose page went away
before their result was sent, and events cancelled before they ran (both rare). Gradio's
`/stream/{event_id}` routes (for `connection="stream"` events, which this app does not
use) would answer 500 instead of success for an event already dropped.
"""

from __future__ import annotations

import functools
import logging

import gradio
from gradio.queueing import Queue

log = logging.getLogger(__name__)
MAX_WATCHED = 1000  # finished events waiting for their result to be sent, watched at most


def forget_finished_events() -> bool:
    """Wrap Queue.process_events once; True when the wrap is in place."""
    if not gradio.__version__.startswith("5."):
        return False  # Gradio 6 cleans up itself
    if getattr(Queue.process_events, "forgets_finished_events", False):
        return True
    process_events = Queue.process_events

    @functools.wraps(process_events)
    async def process_and_forget(self: Queue, events, *args, **kwargs):
        try:
            return await process_events(self, events, *args, **kwargs)
        finally:  # on the event loop, like every other use of these dicts
            # finished events not dropped yet: event id -> its page's session
            finished: dict[str, str | None] = self.__dict__.setdefault("_finished_not_dropped", {})
            for event in events:
                self.event_analytics.pop(event._id, None)
                finished[event._id] = event.session_hash
            for event_id, session_hash in list(finished.items()):
                if event_id not in self.pending_event_ids_session.get(session_hash, ()):
                    self.event_ids_to_events.pop(event_id, None)
                    del finished[event_id]
            while len(finished) > MAX_WATCHED:  # their pages went away: leave them, as Gradio 5 does
                del finished[next(iter(finished))]
            self._asyncio_tasks[:] = [task for task in self._asyncio_tasks if not task.done()]

    process_and_forget.forgets_finished_events = True  # type: ignore[attr-defined]
    Queue.process_events = process_and_forget  # type: ignore[method-assign]
    return True
