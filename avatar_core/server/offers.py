"""Who may connect a stream: WebRTC offers checked before they take a slot.

fastrtc 0.0.34 gives any offer, from anyone, one of a component's `concurrency_limit`
peer slots and keeps it until ICE fails or 30 s pass (and for good when the SDP does
not parse): a few garbage offers a second locked every viewer out. Here an offer must
come from a browser with a started session, is checked for shape and size first, takes
at most one slot per browser (a newer offer replaces that browser's older peer), and a
failed offer gives its slot back at once. ICE candidates are taken only from the browser
that made the offer.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

import gradio as gr
from aiortc import RTCPeerConnection
from fastapi.responses import JSONResponse
from fastrtc import WebRTC
from gradio.components.base import server

log = logging.getLogger(__name__)
MAX_SDP_CHARS = 64_000  # a browser's offer for one track is 3-6 KB
MAX_ID_CHARS = 64  # the page's webrtc_id is 10-12 characters
MAX_CANDIDATE_CHARS = 1_000  # one ICE candidate line is ~150
MAX_CANDIDATES = 40  # per peer: a browser sends 2-10 (each makes aiortc check an address)


def refused(reason: str) -> JSONResponse:
    """fastrtc's own failure shape (the page shows "Unexpected server error" for unknown reasons)."""
    return JSONResponse({"status": "failed", "meta": {"error": reason}})


def _text(value: object, limit: int) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= limit else None


def guard_offers(component: WebRTC, may_stream: Callable[[str], bool]) -> Callable[[str], str | None]:
    """Replace `component`'s `offer` server function with a checked one.
    `may_stream(browser)`: whether that browser (Gradio session hash) has a started session.
    Returns: which browser made a live connection (webrtc_id -> browser, or None)."""
    handle_offer = component.handle_offer
    owner_of: dict[str, str] = {}  # webrtc_id -> browser, for this component's live peers
    candidates: Counter[str] = Counter()  # webrtc_id -> ICE candidates taken

    def forget(webrtc_id: str) -> None:
        owner_of.pop(webrtc_id, None)
        candidates.pop(webrtc_id, None)

    def release(webrtc_id: str) -> RTCPeerConnection | None:
        """Its slot back now, with no await (a burst of offers must not slip in between);
        the caller closes the peer returned."""
        pc = component.pcs.get(webrtc_id)
        component.clean_up(webrtc_id)
        forget(webrtc_id)
        return pc

    async def close(pcs: list[RTCPeerConnection | None]) -> None:
        for pc in pcs:
            if pc is not None:
                await pc.close()

    @server
    async def offer(body: Any, request: gr.Request) -> Any:
        # the component_server route parsed (and Starlette kept) this JSON; the session hash
        # is not passed on to server functions
        try:
            envelope = await request.json()
        except Exception:  # a multipart body: Gradio has read the stream as a form already
            return refused("invalid_request")
        browser = _text(envelope.get("session_hash") if isinstance(envelope, dict) else None, MAX_ID_CHARS)
        if not isinstance(body, dict) or browser is None:
            return refused("invalid_request")
        webrtc_id = _text(body.get("webrtc_id"), MAX_ID_CHARS)
        if webrtc_id is None:
            return refused("invalid_request")
        for ended in [w for w in owner_of if w not in component.pcs]:
            forget(ended)  # fastrtc dropped its peer (closed, failed, timed out)
        if body.get("type") == "ice-candidate":
            candidate = body.get("candidate")
            if owner_of.get(webrtc_id) != browser:
                return refused("unknown_connection")
            if not isinstance(candidate, dict) or not _text(candidate.get("candidate"), MAX_CANDIDATE_CHARS):
                return refused("invalid_candidate_format")
            candidates[webrtc_id] += 1
            if candidates[webrtc_id] > MAX_CANDIDATES:
                return refused("too_many_candidates")
            return await handle_offer(body, component.set_additional_outputs(webrtc_id))
        if body.get("type") != "offer" or not _text(body.get("sdp"), MAX_SDP_CHARS):
            return refused("invalid_offer")
        if not may_stream(browser):
            return refused("no_started_session")
        if webrtc_id in owner_of or webrtc_id in component.pcs:
            return refused("connection_already_exists")
        # one peer per browser: a newer offer replaces the older (the page connecting again)
        older = [release(w) for w, b in list(owner_of.items()) if b == browser]
        owner_of[webrtc_id] = browser
        await close(older)
        try:
            answer = await handle_offer(body, component.set_additional_outputs(webrtc_id))
        except Exception as exc:  # an offer aiortc cannot use (or replaced meanwhile): its slot goes now
            log.info("a WebRTC offer was refused: %s", type(exc).__name__)
            await close([release(webrtc_id)])
            return refused("invalid_offer")
        if owner_of.get(webrtc_id) != browser:  # a newer offer of this browser replaced it meanwhile
            await close([release(webrtc_id)])
            return refused("replaced")
        if isinstance(answer, JSONResponse):
            forget(webrtc_id)  # fastrtc refused it (all its slots taken)
        return answer

    # Gradio looks server functions up by name on the component
    component.offer = offer
    return owner_of.get
