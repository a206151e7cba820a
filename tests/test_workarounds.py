"""Each workaround in avatar_core/server/workarounds.py is written for one pinned
version of Gradio or fastrtc. When a pin moves, this fails: check each workaround
against the new version, drop the ones it no longer needs, then update WORKS_AROUND."""

import asyncio
import inspect
from importlib.metadata import version
from pathlib import Path

import gradio as gr
import gradio.routes
import httpx
from aiortc import RTCSessionDescription
from fastrtc import WebRTC

from avatar_core.server.workarounds import WORKS_AROUND, StableVideoHandler, no_content_type_prints
from avatar_core.voice.microphone import MicrophoneHandler
from tests.support.microphone import MicrophoneTrack
from tests.support.offers import page_peer

ROOT = Path(__file__).resolve().parent.parent


def pins() -> dict[str, str]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return dict(line.split("==") for line in lines if "==" in line and not line.startswith("#"))


def test_the_workarounds_are_for_the_pinned_and_installed_versions():
    for package, written_for in WORKS_AROUND.items():
        assert pins()[package] == written_for, f"{package} pin moved: review server/workarounds.py"
        assert version(package) == written_for, f"{package} {version(package)} installed: review workarounds"


def test_the_video_handler_keeps_its_first_callable():
    def frames(session_id):
        yield from ()

    handler = StableVideoHandler(frames, fps=25)
    for _ in range(2000):  # what fastrtc 0.0.34 does on every offer
        handler.callable = lambda *a, inner=handler.callable: inner(*a)
    assert handler.callable is frames and handler.fps == 25


def test_a_microphone_stream_that_fastrtc_cleans_up_stops_with_everything_it_holds():
    """A replaced microphone peer gives its slot back through fastrtc's clean_up (offers.py),
    as does fastrtc's own 30 s connection timeout; without end_send_stream its loops (and
    the handler, and the listener it holds) would live on."""

    async def body() -> None:
        with gr.Blocks():
            microphone = WebRTC(mode="send", modality="audio", server_rtc_configuration={"iceServers": []})
            microphone.stream(MicrophoneHandler(lambda webrtc_id: None, lambda webrtc_id: None), inputs=[microphone],
                              outputs=[microphone], concurrency_limit=10, time_limit=None)
        before = asyncio.all_tasks()
        for n in range(3):
            pc, connected = page_peer(MicrophoneTrack(), "sendonly")
            await pc.setLocalDescription(await pc.createOffer())
            offer = {"sdp": pc.localDescription.sdp, "type": "offer", "webrtc_id": f"mic{n}"}
            answer = await microphone.handle_offer(offer, microphone.set_additional_outputs(f"mic{n}"))
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type=answer["type"]))
            await asyncio.wait_for(connected.wait(), 10)
            await asyncio.sleep(0.5)  # audio flows: its stream's loops run
            server_side = microphone.pcs[f"mic{n}"]
            microphone.clean_up(f"mic{n}")  # the slot given back, then the peer closed (offers.py's order)
            await server_side.close()
            await pc.close()
        await asyncio.sleep(2.5)  # a stopped stream's loops end within a second
        left = [getattr(task.get_coro(), "__qualname__", "") for task in asyncio.all_tasks() - before]
        stream = {"player_worker_decode", "AudioCallback.process_input_frames", "AudioCallback.start"}
        assert not [name for name in left if name in stream], left

    asyncio.run(body())


def test_gradios_component_server_route_prints_no_content_type_line(capfd):
    """Gradio 5.50.0 prints `content_type application/json` for every WebRTC offer and ICE
    candidate (workaround 12): the line is gone, what else that module prints is not."""
    assert 'print("content_type", content_type)' in inspect.getsource(gradio.routes)  # still in the pin
    no_content_type_prints()
    installed = gradio.routes.print  # type: ignore[attr-defined]
    no_content_type_prints()
    assert gradio.routes.print is installed  # once: not wrapped again  # type: ignore[attr-defined]
    with gr.Blocks() as demo:
        box = gr.Textbox()

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=gradio.routes.App.create_app(demo))
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
            return await client.post("/gradio_api/component_server/", json={
                "component_id": box._id, "fn_name": "nothing", "session_hash": "s", "data": {}})

    reply = asyncio.run(call())
    assert reply.status_code == 404  # the route ran (and refused the unknown function)
    gradio.routes.print("Still", "printed")  # type: ignore[attr-defined]
    out = capfd.readouterr().out
    assert "content_type" not in out and "Still printed" in out
