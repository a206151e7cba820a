"""An aiortc peer's offer to one of the app's WebRTC components, as the page sends it."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription


def page_peer(track_or_kind: MediaStreamTrack | str, direction: str) -> tuple[RTCPeerConnection, asyncio.Event]:
    """A peer set up as the page's component sets up its own (one track, the "text" data
    channel fastrtc waits for), and an event set once it is connected."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # loopback only: no public STUN
    pc.addTransceiver(track_or_kind, direction=direction)
    pc.createDataChannel("text")
    connected = asyncio.Event()

    @pc.on("connectionstatechange")
    def _() -> None:
        if pc.connectionState == "connected":
            connected.set()

    return pc, connected


async def offer_to(url: str, component_id: int, session_hash: str, pc: RTCPeerConnection) -> str:
    """Post `pc`'s offer through Gradio's component_server and take the answer; the
    connection's webrtc_id (RuntimeError when the app refuses it)."""
    await pc.setLocalDescription(await pc.createOffer())
    webrtc_id = uuid.uuid4().hex[:12]
    body = {"component_id": component_id, "fn_name": "offer", "session_hash": session_hash,
            "data": {"sdp": pc.localDescription.sdp, "type": "offer", "webrtc_id": webrtc_id}}
    async with httpx.AsyncClient() as http:
        answer = (await http.post(url + "/gradio_api/component_server/", json=body, timeout=30)).json()
    if "sdp" not in answer:
        raise RuntimeError(f"offer refused: {answer}")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type=answer["type"]))
    return webrtc_id
