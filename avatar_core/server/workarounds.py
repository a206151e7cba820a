"""Workarounds for the pinned Gradio and fastrtc, gathered in one place. Each names the
version it works around; tests/test_workarounds.py fails when a pin moves, so each
is checked again (and removed when the new version no longer needs it).

1. Gradio 5.50.0: its queue keeps every finished event forever (forget_finished_events).
2. fastrtc 0.0.34: re-wraps a shared video handler on every offer (StableVideoHandler).
3. fastrtc 0.0.34: a receive stream that returns leaves the browser's connection open
   and hands None to the encoder, so streams close their own peer (peer_closer).
4. fastrtc 0.0.34 needs gradio < 6, whose deprecation warnings name parameters that
   have no replacement yet (quiet_gradio_6_warnings).
5. fastrtc 0.0.34 breaks receive mode when `rtc_configuration` is a callable: the ICE
   configuration is one static dict (server/turn.py).
6. fastrtc 0.0.34's server-side peers use aiortc's default ICE servers (Google's public
   STUN) unless given `server_rtc_configuration`, which it converts once, at construction;
   it reads the converted attribute at every offer, so renewed servers are set there
   (server_ice_follows).
7. Gradio 5.50.0 builds its FastAPI app with debug=True and no way to change it, so
   Starlette answers any unhandled error with the full traceback in the HTTP body (an
   unknown fn_index does it): no_tracebacks_to_clients turns debug off at start-up.
8. Gradio 5.50.0's Chatbot renders a message's HTML (and CSS, and remote images) even
   with render_markdown=False and sanitize_html=True: plain_text_messages escapes it, so
   the page shows what was written, as text.
9. Gradio 5.50.0 answers an error of its own (a call with too few values, a path that
   was not uploaded) with `{"error": null}` unless show_error is on, which would also
   send any exception's text: errors_say_what_went_wrong gives those one generic line,
   and cuts an error message that quotes a caller's huge value.
10. fastrtc 0.0.34 never stops a send-mode stream (the microphone) that it cleans up without
   its connection failing first (a replaced peer, its own 30 s connection timeout): the
   stream's loops, and the handler with what it holds, would live for good
   (end_send_stream).
11. Gradio 5.50.0 keeps a component updated for one browser (gr.update of its props) as a
   copy for that browser, and serves that browser's server calls from the copy, which
   lacks what was set on the original after construction (fastrtc's stream handler, the
   offer guard): a WebRTC component must never be updated; app.py shows the column around
   the microphone instead.
12. Gradio 5.50.0's component_server route prints `content_type <type>` (a debugging line
   left in) for every call to a component's server function: every WebRTC offer and ICE
   candidate, a line each in the operator's console. That module's print drops exactly
   that line (no_content_type_prints); anything else it prints still goes out.
13. Gradio 5.50.0's page shows the error of an unqueued call (queue=False) as a toast for
   10 s whatever gr.Error says (its `visible` and `duration` are read for queued calls only),
   over the buttons. The page's unqueued buttons (Repeat, Talk, Interrupt) raise no error:
   it is in the status log; the API's endpoints of the same names raise theirs (app.py).

## 1. Letting Gradio 5's queue forget events it has finished

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

import builtins
import functools
import html
import logging
import warnings
from collections.abc import Callable
from typing import Any

import gradio
import gradio.queueing
import gradio.routes
import gradio.utils
from fastrtc import VideoStreamHandler, WebRTC
from fastrtc.tracks import StreamHandlerBase
from gradio.queueing import Queue

from .runtime import Runtime
from .turn import IceConfiguration

log = logging.getLogger(__name__)
WORKS_AROUND = {"gradio": "5.50.0", "fastrtc": "0.0.34"}  # the pins these are written for
MAX_WATCHED = 1000  # finished events waiting for their result to be sent, watched at most
PeerCloser = Callable[[str], None]


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
            finished: dict[str, str] = self.__dict__.setdefault("_finished_not_dropped", {})
            for event in events:
                self.event_analytics.pop(event._id, None)
                finished[event._id] = event.session_hash or ""
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


class StableVideoHandler(VideoStreamHandler):
    """fastrtc 0.0.34 wraps the shared handler's `callable` again on every offer, so
    after about a thousand streams creating one overflows the stack. Keep the first."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "callable" and "callable" in self.__dict__:
            return
        super().__setattr__(name, value)


def end_send_stream(handler: StreamHandlerBase) -> None:
    """End the fastrtc stream feeding `handler` (a send-mode copy): its receiving and sending
    loops stop, and a start still waiting for the data channel goes on and finds it stopped.
    fastrtc 0.0.34's AudioCallback hands the handler its own bound `clear_queue`, the one
    way from a handler back to its stream."""
    stream = getattr(getattr(handler, "_clear_queue", None), "__self__", None)
    if stream is not None:
        stream.stop()
    handler.channel_set.set()


def peer_closer(component: WebRTC, runtime: Callable[[], Runtime]) -> PeerCloser:
    """Closes one of `component`'s server-side peer connections, from any thread
    (fastrtc 0.0.34 keeps them in `component.pcs` and offers no way to end one)."""

    def close(webrtc_id: str) -> None:
        pc = component.pcs.get(webrtc_id)
        if pc is not None:
            rt = runtime()
            rt.hand_over(lambda: rt.tasks.spawn(pc.close(), f"close-peer-{webrtc_id[:8]}"))

    return close


def server_ice_follows(components: list[WebRTC], ice: IceConfiguration) -> None:
    """The server's own peers use exactly the configured ICE servers, renewed ones too."""

    def apply(servers: list[dict[str, Any]]) -> None:
        for component in components:
            component.server_rtc_configuration = WebRTC.convert_to_aiortc_format({"iceServers": servers})

    ice.follow(apply)


def no_tracebacks_to_clients(app: Any) -> None:
    """Unhandled errors then get a plain "Internal Server Error" (the traceback stays in the
    server's log). Starlette built its middleware (with debug) for the start-up call, and
    builds it again on the next request once it is cleared."""
    app.debug = False
    app.middleware_stack = None


def plain_text_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chat messages whose content the Chatbot shows as the very text (no element from it)."""
    return [{**message, "content": html.escape(str(message.get("content", "")))} for message in messages]


MAX_ERROR_CHARS = 500  # Gradio quotes a rejected value whole ("Value: ... is not in the list of choices")
CALL_NOT_RUN = ("This call could not be run ({kind}). From the API: check the number and kind of values "
                "sent (the page's 'Use via API' lists them); otherwise try again, and if it persists, "
                "tell the operator (the server's log has the details).")


def errors_say_what_went_wrong() -> None:
    """Every error reply has one plain line: our own messages (gr.Error) as they are, cut to
    MAX_ERROR_CHARS; anything else by its kind only (its text may hold anything)."""
    if getattr(gradio.utils.error_payload, "says_what_went_wrong", False):
        return
    original = gradio.utils.error_payload

    def error_payload(error: BaseException | None, show_error: bool) -> dict[str, Any]:
        content = original(error, False)  # AppError (gr.Error): its fields; others: error None
        if error is not None and content.get("error") is None:
            content["error"] = CALL_NOT_RUN.format(kind=type(error).__name__)
        message = content["error"]
        if isinstance(message, str) and len(message) > MAX_ERROR_CHARS:
            content["error"] = message[: MAX_ERROR_CHARS - 1] + "…"
        return content

    error_payload.says_what_went_wrong = True  # type: ignore[attr-defined]
    gradio.utils.error_payload = error_payload  # routes.py looks it up here
    gradio.queueing.error_payload = error_payload  # queueing.py imported the name


def quiet_gradio_6_warnings() -> None:
    """fastrtc 0.0.34 needs gradio < 6, whose replacements for these parameters do not exist yet."""
    warnings.filterwarnings("ignore", message=".*removed in Gradio 6.0", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message="The default value of 'allow_tags'", category=DeprecationWarning)


def no_content_type_prints() -> None:
    """Give gradio.routes a print that drops its `print("content_type", content_type)` line
    (a module-level name shadows the builtin there); once, however often called."""
    current = getattr(gradio.routes, "print", None)
    if getattr(current, "drops_content_type", False):
        return

    def print_(*args: Any, **kwargs: Any) -> None:
        if len(args) == 2 and args[0] == "content_type" and not kwargs:
            return
        builtins.print(*args, **kwargs)

    print_.drops_content_type = True  # type: ignore[attr-defined]
    gradio.routes.print = print_  # type: ignore[attr-defined]
