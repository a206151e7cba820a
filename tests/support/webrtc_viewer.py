"""A headless viewer that does what the page's two WebRTC components do, with aiortc:
call the app's API with gradio_client, post an SDP offer to the component's `offer`
endpoint, then fire the component's `tick` event so the server binds the stream to
this browser session's inputs.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from dataclasses import dataclass, field

import httpx
import numpy as np
from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamError
from gradio_client import Client
from gradio_client.exceptions import AppError

from tests.support.log_lines import holds
from tests.support.microphone import MicrophoneTrack, connect_microphone
from tests.support.mouth_measure import OPEN_MOUTH, mouth_darkness
from tests.support.mouth_reading import MouthReader
from tests.support.offers import offer_to, page_peer


@dataclass
class Received:
    """What one track delivered: arrival times and per-frame measurements."""

    times: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)  # video: mouth_darkness; audio: RMS
    size: tuple[int, int] | None = None
    last_frame: np.ndarray | None = None

    def fps(self, since: float = 0.0) -> float:
        t = [x for x in self.times if x >= since]
        return (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 else 0.0

    def gaps_ms(self, since: float = 0.0) -> np.ndarray:
        return np.diff([x for x in self.times if x >= since]) * 1000

    def first_time(self, predicate, since: float) -> float | None:
        for t, v in zip(self.times, self.values, strict=False):
            if t >= since and predicate(v):
                return t
        return None

    def max_value(self, since: float, until: float = float("inf")) -> float:
        vals = [v for t, v in zip(self.times, self.values, strict=False) if since <= t <= until]
        return max(vals) if vals else 0.0


MAX_MOUTH_CROPS = 25 * 120  # two minutes of frames (a few kB each)
MAX_AUDIO_PACKETS = 50 * 120  # two minutes of 20 ms packets
AUDIO_PCM_RATE = 48_000  # what aiortc's Opus decoder gives
# a queued call that has not finished by then fails its test (a hang must not stall the whole run
# until pytest's faulthandler ends it); the slowest call (Start, joining a room) takes seconds
QUEUED_CALL_TIMEOUT_S = 90
SPEECH_RMS = 0.02  # an audio packet this loud is speech (bench/stream.py's onsets use the same levels)


def speech_onsets(viewer: Viewer, since: float) -> tuple[float | None, float | None]:
    """When the viewer first heard speech and first saw an open mouth, at or after `since`."""
    return (viewer.audio.first_time(lambda rms: rms > SPEECH_RMS, since),
            viewer.video.first_time(lambda dark: dark > OPEN_MOUTH, since))


class Viewer:
    def __init__(self, url: str, analyse_video: bool = True, mouth_reader: MouthReader | None = None) -> None:
        self.url = url
        self.analyse_video = analyse_video  # False: only count frames (cheaper, for many viewers)
        # with a reader: each frame's mouth area is kept, as (arrival time, crop), to read afterwards
        self.mouth_reader = mouth_reader
        self.mouth_crops: deque[tuple[float, np.ndarray]] = deque(maxlen=MAX_MOUTH_CROPS)
        # with a reader, the received sound too: (arrival time, mono samples at AUDIO_PCM_RATE)
        self.audio_packets: deque[tuple[float, np.ndarray]] = deque(maxlen=MAX_AUDIO_PACKETS)
        self.api = Client(url, verbose=False)
        config = self.api.config
        self._ids = {c["props"].get("elem_id"): c["id"] for c in config["components"]}
        # events wired with queue=False: the page's client POSTs them to /run/<name> instead of the queue
        self._http = httpx.Client()  # one kept-alive connection, as a browser has
        self._unqueued = {d["api_name"] for d in config["dependencies"] if d.get("queue") is False}
        self._tick = {d["targets"][0][0]: i for i, d in enumerate(config["dependencies"])
                      if d["targets"] and d["targets"][0][1] == "tick" and d["targets"][0][0] is not None}
        self.video = Received()
        self.audio = Received()
        self.pcs: list[RTCPeerConnection] = []
        self._tasks: list[asyncio.Task] = []

    def call(self, api_name: str, *args):
        if api_name not in self._unqueued:
            return self._queued(*args, api_name="/" + api_name)
        reply = self._http.post(f"{self.url}/gradio_api/run/{api_name}", timeout=60,
                                json={"data": list(args), "session_hash": self.api.session_hash})
        if reply.status_code != 200:
            error = reply.json().get("error") if "json" in reply.headers.get("content-type", "") else None
            raise AppError(error or f"HTTP {reply.status_code}: {reply.text[:200]}")
        data = reply.json()["data"]
        return data[0] if len(data) == 1 else tuple(data)

    async def acall(self, api_name: str, *args):
        return await asyncio.to_thread(self.call, api_name, *args)

    async def wait_for_log(self, *texts: str | re.Pattern[str], timeout: float = 10, after: int = 0) -> str:
        """The status log once its lines after the first `after` hold every one of `texts`
        (substrings, or patterns searched per line), or as it is at the timeout. Take
        `after` with log_mark() before an action to see only the lines it added."""
        deadline = time.monotonic() + timeout
        while True:
            log = await self.acall("status")
            lines = log.splitlines()[after:]
            if all(any(holds(line, text) for line in lines) for text in texts) or time.monotonic() > deadline:
                return log
            await asyncio.sleep(0.1)

    async def log_mark(self) -> int:
        """The status log's length now (for wait_for_log's and wait_for_line's `after`)."""
        return len((await self.acall("status")).splitlines())

    async def wait_for_line(self, text: str | re.Pattern[str], after: int, timeout: float = 10) -> str | None:
        """The first status line after the first `after` that holds `text`, once there is one (None at the timeout)."""
        log = await self.wait_for_log(text, timeout=timeout, after=after)
        return next((line for line in log.splitlines()[after:] if holds(line, text)), None)

    def _queued(self, *args, **which):
        """A call through Gradio's queue (gradio_client), bounded in time."""
        job = self.api.submit(*args, **which)
        try:
            return job.result(timeout=QUEUED_CALL_TIMEOUT_S)
        except TimeoutError:
            job.cancel()
            raise TimeoutError(f"queued call {which} did not finish in {QUEUED_CALL_TIMEOUT_S} s") from None

    async def start(self, timeout: float = 30) -> None:
        """Click Start: the API call, then both components connect, as the page does."""
        await self.acall("start_stream")
        # one after the other, not at once as the page does: gradio_client 1.14 can lose a
        # queued call that joins just as another call of the same Client completes (the
        # server closes the session's event stream, the client thought it open and never
        # reopens it: the call waits for ever, or is cancelled). The two components' ticks
        # met that way once in a whole run (issue 21).
        await self._connect("avatar-video", "video", timeout)
        await self._connect("avatar-audio", "audio", timeout)

    async def microphone(self) -> MicrophoneTrack:
        """Switch the page's microphone on: a track that says what it is given, in real time."""
        pc, track = await connect_microphone(self.url, self._ids["microphone"], self.api.session_hash)
        self.pcs.append(pc)
        return track

    async def _connect(self, elem_id: str, kind: str, timeout: float) -> None:
        pc, connected = page_peer(kind, "recvonly")
        self.pcs.append(pc)

        @pc.on("track")
        def _(track) -> None:
            sink = self.video if kind == "video" else self.audio
            self._tasks.append(asyncio.ensure_future(self._read(track, sink, kind)))

        webrtc_id = await offer_to(self.url, self._ids[elem_id], self.api.session_hash, pc)
        await asyncio.wait_for(connected.wait(), timeout)
        # the component's "tick" (fired by the page once connected) binds the stream's inputs
        await asyncio.to_thread(self._queued, webrtc_id, fn_index=self._tick[self._ids[elem_id]])

    async def _read(self, track, sink: Received, kind: str) -> None:
        try:
            while True:
                frame = await track.recv()
                now = time.monotonic()
                if kind == "video" and not self.analyse_video:
                    sink.size = (frame.width, frame.height)
                    sink.values.append(0.0)
                elif kind == "video":
                    image = frame.to_ndarray(format="bgr24")
                    sink.size = (frame.width, frame.height)
                    sink.last_frame = image
                    sink.values.append(mouth_darkness(image))
                    if self.mouth_reader is not None:
                        self.mouth_crops.append((now, self.mouth_reader.crop(image)))
                else:
                    pcm = frame.to_ndarray().astype(np.float32) / 32768.0
                    sink.values.append(float(np.sqrt(np.mean(pcm**2))))
                    if self.mouth_reader is not None:  # interleaved stereo -> mono
                        self.audio_packets.append((now, pcm.reshape(-1, len(frame.layout.channels)).mean(axis=1)))
                sink.times.append(now)
        except MediaStreamError:
            pass

    async def __aenter__(self) -> Viewer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        for pc in self.pcs:
            await pc.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.to_thread(self.api.close)
        self._http.close()
