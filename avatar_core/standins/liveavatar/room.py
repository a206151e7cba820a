"""A LiveKit-compatible room on loopback that the unmodified `livekit` Python SDK joins.

No LiveKit server installs from PyPI, npm or Debian, so the stand-in speaks the signalling
itself (LiveKit's v0, dual-peer-connection protocol; the SDK's v1 path is answered 404, and
it falls back): a WebSocket at /rtc carrying protobuf SignalRequest / SignalResponse, the
session token as its Bearer credential. Media and data go over aiortc peers:
- subscriber (the server offers): the avatar participant's VP8 video and Opus audio, and
  the `_reliable` / `_lossy` data channels on which the agent's events reach the client;
- publisher (the client offers, on its first publish_data): data from the client arrives
  on its `_reliable` channel as DataPacket{user{payload, topic}}.
Ping -> pong, trickle for either peer, leave. The facts it rests on are in
../shared/reference/liveavatar-api.md (LiveKit from Python).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcdatachannel import RTCDataChannel
from aiortc.sdp import candidate_from_sdp
from livekit.protocol import models as lk_models
from livekit.protocol import rtc as lk_rtc
from starlette.websockets import WebSocket, WebSocketDisconnect

from ...providers.local.avatar import LocalAvatar
from ..heygen.media import AvatarAudioTrack, AvatarClock, AvatarVideoTrack

log = logging.getLogger(__name__)
AVATAR_IDENTITY = "liveavatar-avatar"
AVATAR_SID = "PA_avatar"
VIDEO_SID, AUDIO_SID = "TR_avatar_video", "TR_avatar_audio"
PING_INTERVAL_S, PING_TIMEOUT_S = 5, 15
MAX_SIGNAL_BYTES = 256 * 1024
DataHandler = Callable[[str, bytes], None]  # (topic, payload) from the client


def _response(**message: Any) -> bytes:
    return lk_rtc.SignalResponse(**message).SerializeToString()


class AvatarParticipant:
    """The avatar in one room: its two tracks, made once, sent to whoever subscribes."""

    def __init__(self, avatar: LocalAvatar, on_speaking: Callable[[bool], None]) -> None:
        self.avatar = avatar
        self.clock = AvatarClock(avatar, on_speaking)
        width, height = avatar.size
        self.info = lk_models.ParticipantInfo(
            sid=AVATAR_SID, identity=AVATAR_IDENTITY, name="LiveAvatar stand-in", is_publisher=True,
            state=lk_models.ParticipantInfo.State.ACTIVE, kind=lk_models.ParticipantInfo.Kind.AGENT,
            joined_at=int(time.time()),
            tracks=[lk_models.TrackInfo(sid=VIDEO_SID, type=lk_models.TrackType.VIDEO, name="avatar-video",
                                        mime_type="video/VP8", width=width, height=height,
                                        source=lk_models.TrackSource.CAMERA),
                    lk_models.TrackInfo(sid=AUDIO_SID, type=lk_models.TrackType.AUDIO, name="avatar-audio",
                                        mime_type="audio/opus", source=lk_models.TrackSource.MICROPHONE)])


class RoomConnection:
    """One client's signalling WebSocket and its two peers."""

    def __init__(self, websocket: WebSocket, room_name: str, identity: str, avatar: AvatarParticipant,
                 on_data: DataHandler) -> None:
        self.websocket = websocket
        self._room_name, self._identity = room_name, identity
        self._avatar = avatar
        self._on_data = on_data
        self.subscriber = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # loopback only: no public STUN
        self.publisher: RTCPeerConnection | None = None
        self._reliable: RTCDataChannel | None = None
        self._closed = asyncio.Event()

    async def run(self, silent: bool = False) -> None:
        """`silent`: join, then never offer the media (a room that hangs, for tests)."""
        await self.websocket.send_bytes(_response(join=self._join()))
        if not silent:
            await self._offer_subscriber()
        try:
            while not self._closed.is_set():
                raw = await self.websocket.receive_bytes()
                if len(raw) > MAX_SIGNAL_BYTES:
                    break
                request = lk_rtc.SignalRequest.FromString(raw)
                if not await self._handle(request):
                    break
        except (WebSocketDisconnect, RuntimeError):
            pass  # the client went away
        finally:
            await self.close()

    def _join(self) -> lk_rtc.JoinResponse:
        permission = lk_models.ParticipantPermission(can_subscribe=True, can_publish=True, can_publish_data=True)
        return lk_rtc.JoinResponse(
            room=lk_models.Room(sid=f"RM_{self._room_name[:12]}", name=self._room_name,
                                creation_time=int(time.time()), num_participants=2),
            participant=lk_models.ParticipantInfo(sid=f"PA_{self._identity[:12]}", identity=self._identity,
                                                  state=lk_models.ParticipantInfo.State.JOINED,
                                                  permission=permission, joined_at=int(time.time())),
            other_participants=[self._avatar.info], subscriber_primary=True,
            ping_interval=PING_INTERVAL_S, ping_timeout=PING_TIMEOUT_S, server_version="1.9.0",
            server_info=lk_models.ServerInfo(version="1.9.0", protocol=16, region="loopback", node_id="stand-in"))

    async def _offer_subscriber(self) -> None:
        for kind, sid, track_type in (("video", VIDEO_SID, AvatarVideoTrack), ("audio", AUDIO_SID, AvatarAudioTrack)):
            track = track_type(self._avatar.clock, None)
            track._id = sid  # the SDK maps a=msid "participant sid|track sid" to the participant's track
            sender = self.subscriber.addTrack(track)
            sender._stream_id = f"{AVATAR_SID}|{sid}"
            log.debug("subscriber %s track %s", kind, sid)
        self._reliable = self.subscriber.createDataChannel("_reliable", ordered=True)
        self.subscriber.createDataChannel("_lossy", ordered=False, maxRetransmits=0)
        await self.subscriber.setLocalDescription(await self.subscriber.createOffer())
        offer = self.subscriber.localDescription
        await self.websocket.send_bytes(_response(offer=lk_rtc.SessionDescription(type="offer", sdp=offer.sdp, id=1)))

    async def _handle(self, request: lk_rtc.SignalRequest) -> bool:
        """False when the client leaves."""
        kind = request.WhichOneof("message")
        if kind == "answer":
            await self.subscriber.setRemoteDescription(RTCSessionDescription(sdp=request.answer.sdp, type="answer"))
        elif kind == "offer":
            await self._answer_publisher(request.offer)
        elif kind == "trickle":
            await self._add_candidate(request.trickle)
        elif kind == "ping_req":
            pong = lk_rtc.Pong(last_ping_timestamp=request.ping_req.timestamp, timestamp=int(time.time() * 1000))
            await self.websocket.send_bytes(_response(pong_resp=pong))
        elif kind == "ping":
            await self.websocket.send_bytes(_response(pong=int(time.time() * 1000)))
        elif kind == "leave":
            return False
        return True  # the rest (mute, subscription, track settings...) changes nothing here

    async def _answer_publisher(self, offer: lk_rtc.SessionDescription) -> None:
        if self.publisher is None:
            self.publisher = RTCPeerConnection(RTCConfiguration(iceServers=[]))

            @self.publisher.on("datachannel")
            def _(channel: RTCDataChannel) -> None:
                @channel.on("message")
                def _(message: bytes | str) -> None:
                    if isinstance(message, bytes):
                        self._received(message)

        await self.publisher.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type="offer"))
        await self.publisher.setLocalDescription(await self.publisher.createAnswer())
        answer = lk_rtc.SessionDescription(type="answer", sdp=self.publisher.localDescription.sdp, id=offer.id)
        await self.websocket.send_bytes(_response(answer=answer))

    def _received(self, raw: bytes) -> None:
        with contextlib.suppress(Exception):  # whatever a client sends, the room keeps going
            packet = lk_models.DataPacket.FromString(raw)
            if packet.WhichOneof("value") == "user":
                self._on_data(packet.user.topic, packet.user.payload)

    async def _add_candidate(self, trickle: lk_rtc.TrickleRequest) -> None:
        pc = self.subscriber if trickle.target == lk_rtc.SignalTarget.SUBSCRIBER else self.publisher
        with contextlib.suppress(Exception):  # a malformed or late candidate is ignored, as browsers do
            init = json.loads(trickle.candidateInit)
            line = str(init.get("candidate") or "")
            if pc is None or not line:
                return
            candidate = candidate_from_sdp(line.removeprefix("candidate:"))
            candidate.sdpMid, candidate.sdpMLineIndex = init.get("sdpMid"), init.get("sdpMLineIndex")
            await pc.addIceCandidate(candidate)

    def send(self, topic: str, event: dict[str, Any]) -> None:
        """An agent event to the client, on the subscriber's reliable channel."""
        if self._reliable is None or self._reliable.readyState != "open":
            return
        user = lk_models.UserPacket(payload=json.dumps(event).encode(), topic=topic)
        packet = lk_models.DataPacket(user=user, participant_identity=AVATAR_IDENTITY, participant_sid=AVATAR_SID)
        self._reliable.send(packet.SerializeToString())

    async def close(self, leave: bool = False) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        if leave:  # the server ends the session: tell the client to go
            with contextlib.suppress(Exception):
                reason = lk_models.DisconnectReason.ROOM_DELETED
                await self.websocket.send_bytes(_response(leave=lk_rtc.LeaveRequest(
                    reason=reason, action=lk_rtc.LeaveRequest.Action.DISCONNECT)))
        with contextlib.suppress(Exception):
            await self.websocket.close()
        await self.subscriber.close()
        if self.publisher is not None:
            await self.publisher.close()
