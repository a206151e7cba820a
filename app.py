"""Streaming Avatar: a talking avatar streamed to the browser over WebRTC.

Layout and event wiring only; everything else lives in avatar_core/.
Run: python app.py [--share]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial, wraps
from typing import Any, ParamSpec, TypeVar

import gradio as gr
from fastrtc import WebRTC
from starlette.middleware import Middleware

from avatar_core.errors import AvatarError
from avatar_core.media import backgrounds, streams
from avatar_core.media.format import FPS, TICK_S
from avatar_core.providers.base import MAX_TEXT_CHARS, QUALITY_SIZES, AvatarService
from avatar_core.providers.registry import service_for
from avatar_core.server import page_scripts
from avatar_core.server.logs import configure_logging
from avatar_core.server.memory import freeze_startup_heap, pin_mmap_threshold
from avatar_core.server.offers import guard_offers
from avatar_core.server.request_limits import RequestSizeLimit
from avatar_core.server.runtime import Runtime
from avatar_core.server.turn import IceConfiguration
from avatar_core.server.workarounds import (
    StableVideoHandler,
    errors_say_what_went_wrong,
    forget_finished_events,
    no_content_type_prints,
    no_tracebacks_to_clients,
    peer_closer,
    plain_text_messages,
    quiet_gradio_6_warnings,
    server_ice_follows,
)
from avatar_core.session.admission import Admission
from avatar_core.session.controller import MAX_BROWSERS, OUR_LLM, Controller, TalkSettings, VoiceSettings
from avatar_core.session.manager import SessionManager
from avatar_core.settings import Settings, SettingsError, load_settings
from avatar_core.talk.llm import llm_from
from avatar_core.voice.microphone import MicrophoneHandler
from avatar_core.voice.pauses import silero_session
from avatar_core.voice.recognizer import Recognizer, RecognizerUnavailableError

log = logging.getLogger("avatar")
quiet_gradio_6_warnings()
P = ParamSpec("P")
R = TypeVar("R")

QUEUE_MAX_SIZE = 64
DESCRIPTION = (
    "Create a session, start the stream, then type something for the avatar to say, or switch the "
    "microphone on and speak to it. The green screen is removed on the server; pick what replaces it below."
)
# the browser's own clean-up of microphone audio: echo cancellation keeps the avatar's voice out
MICROPHONE_CONSTRAINTS = {"echoCancellation": True, "noiseSuppression": True, "autoGainControl": True,
                          "channelCount": {"ideal": 1}}
MICROPHONE_LABELS = {"start": "Speak to the avatar", "stop": "Stop listening", "waiting": "Connecting..."}


def user_errors(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """AvatarError -> gr.Error: raised to API callers, nothing changed. The page shows it in the
    status log (the controller wrote it there), not as a toast: one sat over the buttons for 10 s."""
    @wraps(fn)  # keeps the signature, so Gradio still injects gr.Request
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except AvatarError as exc:
            raise gr.Error(str(exc), print_exception=False, visible=False) from None

    return wrapper


def client_of(request: gr.Request) -> str:
    """The caller's address: on a Space, the first X-Forwarded-For entry (its proxy sets it;
    elsewhere anyone could, so it is not trusted), else the connection's peer."""
    forwarded = request.headers.get("x-forwarded-for", "") if os.environ.get("SPACE_ID") else ""
    if forwarded.split(",")[0].strip():
        return forwarded.split(",")[0].strip()
    return request.client.host if request.client else ""


def browser_of(request: gr.Request) -> str:
    """Which browser tab a call comes from (Gradio's session hash; one shared key without it)."""
    return request.session_hash or ""


def build_app(settings: Settings, ice: IceConfiguration, service: AvatarService,
              recognizer: Recognizer) -> tuple[gr.Blocks, Controller]:
    video_delay_ms = service.video_delay_ms if settings.video_delay_ms is None else settings.video_delay_ms
    sessions = SessionManager(service, settings.max_sessions, settings.session_idle_timeout_s,
                              video_delay_ticks=round(video_delay_ms / 1000 / TICK_S),
                              connection_help=ice.connection_help(),
                              max_per_client=settings.max_sessions_per_client,
                              admission=Admission(min_fps=settings.admission_min_fps)
                              if settings.admission_min_fps else None)
    token = settings.operator_token.get_secret_value() if settings.operator_token else None
    controller = Controller(sessions,
                            TalkSettings(llm_from(settings), settings.system_prompt, settings.llm_max_history),
                            operator_token=token,
                            voice=VoiceSettings(recognizer, settings.voice_pause_ms, settings.voice_max_turn_s))
    capabilities = service.capabilities
    initial = service.initial_choices()

    @user_errors
    async def new_session(avatar_id: str, voice_id: str, quality: str, request: gr.Request):
        session_id = await controller.new_session(browser_of(request), avatar_id, voice_id, quality,
                                                  client_of(request))
        return session_id, controller.status(browser_of(request))[1]

    @user_errors
    async def start_stream(request: gr.Request):
        await controller.start(browser_of(request))
        return controller.status(browser_of(request))[1]

    @user_errors
    async def repeat(text: str, request: gr.Request):
        await controller.repeat(browser_of(request), text)
        return controller.status(browser_of(request))[1]

    @user_errors
    async def talk(text: str, answer_with: str, request: gr.Request):
        await controller.talk(browser_of(request), text, answer_with)
        return controller.status(browser_of(request))[1]

    @user_errors
    async def interrupt(request: gr.Request):
        await controller.interrupt(browser_of(request))
        return controller.status(browser_of(request))[1]

    async def in_status_log(call: Awaitable[str], request: gr.Request) -> str:
        """The page's unqueued buttons: an error is not raised (Gradio 5.50 would show it as a 10 s
        toast over the buttons, workarounds.py 13), it is in the status log already."""
        with contextlib.suppress(gr.Error):
            return await call
        return controller.status(browser_of(request))[1]

    async def repeat_from_page(text: str, request: gr.Request) -> str:
        return await in_status_log(repeat(text, request), request)

    async def talk_from_page(text: str, answer_with: str, request: gr.Request) -> str:
        return await in_status_log(talk(text, answer_with, request), request)

    async def interrupt_from_page(request: gr.Request) -> str:
        return await in_status_log(interrupt(request), request)

    @user_errors
    async def close_session(request: gr.Request):
        await controller.close(browser_of(request))
        return None, controller.status(browser_of(request))[1]

    @user_errors
    async def set_background(remove: bool, kind: str, color: str, preset: str, upload: str | None,
                             request: gr.Request):
        await controller.set_background(browser_of(request), remove, kind, color, preset, upload)
        return controller.status(browser_of(request))[1]

    async def refresh(seen_log: int, seen_chat: int, seen_stats: str, request: gr.Request):  # on the loop
        log_version, text = controller.status(browser_of(request))
        chat_version, messages = controller.transcript(browser_of(request), seen_chat)
        stats = controller.stats(browser_of(request)).as_text()
        log_out = (gr.skip(), gr.skip()) if log_version == seen_log else (text, log_version)
        chat_out = (gr.skip(), gr.skip()) if messages is None else (plain_text_messages(messages), chat_version)
        stats_out = (gr.skip(), gr.skip()) if stats == seen_stats else (stats, stats)
        return *log_out, *chat_out, *stats_out

    async def status_now(request: gr.Request):
        """After a failed action: its error line, at once rather than at the next refresh."""
        log_version, text = controller.status(browser_of(request))
        return text, log_version

    async def load_choices(request: gr.Request):
        choices = await controller.choices(browser_of(request))
        return (gr.update(choices=choices.avatars, value=choices.default_avatar),
                gr.update(choices=choices.voices, value=choices.default_voice))

    @user_errors
    async def close_leaked(operator_token: str, request: gr.Request):
        await controller.close_leaked_upstream(browser_of(request), operator_token)
        return controller.status(browser_of(request))[1]

    async def status_log(request: gr.Request) -> str:
        """The status log as text (read-only), for scripts."""
        return controller.status(browser_of(request))[1]

    async def stream_stats(request: gr.Request) -> dict[str, Any]:
        """This browser's own stream stats (session is null without one) and the server's load,
        as JSON (read-only), for scripts."""
        return controller.stats(browser_of(request)).as_dict()

    async def set_answer_with(answer_with: str, request: gr.Request):
        controller.set_answer_with(browser_of(request), answer_with)

    async def microphone_on(request: gr.Request):
        controller.microphone_on(browser_of(request))

    async def microphone_refused_by_browser(request: gr.Request):
        controller.microphone_refused(browser_of(request))

    async def microphone_off(request: gr.Request):
        controller.microphone_off(browser_of(request))

    async def unload(request: gr.Request):
        await controller.unload(browser_of(request))

    # uploaded pictures in Gradio's cache are deleted after an hour, checked hourly
    with gr.Blocks(title="Streaming Avatar", theme=gr.themes.Soft(), delete_cache=(3600, 3600),
                   head=page_scripts.HEAD, css=page_scripts.CSS) as demo:
        gr.Markdown("# Streaming Avatar\n" + DESCRIPTION)
        session_id = gr.State(None)
        log_version = gr.State(-1)
        chat_version = gr.State(-2)
        stats_shown = gr.State("")
        with gr.Row(equal_height=True):
            # lists from upstream are filled when the page loads (load_choices)
            avatar_id = gr.Dropdown(initial.avatars, value=initial.default_avatar, label="Avatar ID",
                                    allow_custom_value=True, scale=2)
            voice_id = gr.Dropdown(initial.voices, value=initial.default_voice, label="Voice ID",
                                   allow_custom_value=True, scale=2)
            # allow_custom_value: an API caller's bad value gets our message and a status line,
            # not Gradio's "not in the list of choices" with the whole value echoed
            quality = gr.Dropdown([(f"{q} ({w}x{h})", q) for q, (w, h) in QUALITY_SIZES.items()],
                                  value=settings.default_quality, label="Quality", scale=2, allow_custom_value=True)
            new_btn = gr.Button("New", variant="primary", elem_id="new-btn", scale=1, min_width=90)
            start_btn = gr.Button("Start", elem_id="start-btn", scale=1, min_width=90)
            close_btn = gr.Button("Close", variant="stop", elem_id="close-btn", scale=1, min_width=90)
        with gr.Row(equal_height=True, visible=capabilities.upstream_sessions):
            leaked_btn = gr.Button(f"Close my open {service.label} sessions", size="sm", elem_id="leaked-btn",
                                   scale=2, visible=capabilities.upstream_sessions)
            operator_token = gr.Textbox(label=f"Operator token (only to close {service.label} sessions other "
                                              "servers opened)", type="password", max_length=200, scale=3,
                                        elem_id="operator-token", visible=capabilities.upstream_sessions)
        with gr.Row(equal_height=True):
            message = gr.Textbox(label="Message", placeholder="Type what the avatar should say, or a question",
                                 max_length=MAX_TEXT_CHARS, scale=4, elem_id="message")
            own_llm = [(capabilities.own_llm, service.name)] if capabilities.own_llm else []
            answer_with = gr.Radio([("Our LLM", OUR_LLM), *own_llm],
                                   value=OUR_LLM, label="Answers from", visible=bool(capabilities.own_llm), scale=1)
            repeat_btn = gr.Button("Repeat", elem_id="repeat-btn", scale=1, min_width=90)
            talk_btn = gr.Button("Talk", variant="primary", elem_id="talk-btn", scale=1, min_width=90)
            interrupt_btn = gr.Button("Interrupt", elem_id="interrupt-btn", scale=1, min_width=90)
        status = gr.Textbox(label="Status", lines=7, max_lines=7, interactive=False, autoscroll=True,
                            elem_id="status")
        with gr.Row():
            with gr.Column(scale=3):
                video = WebRTC(label="Avatar", mode="receive", modality="video", elem_id="avatar-video",
                               rtc_configuration=ice.rtc_configuration)
                transcript = gr.Chatbot(type="messages", label="Transcript", height=260, elem_id="transcript",
                                    allow_tags=False, render_markdown=False, sanitize_html=True)
            with gr.Column(scale=1):
                # shown once the stream is started: the microphone only works for a started session. The
                # column is shown, not the component: Gradio keeps an updated component as a per-browser
                # copy, which lacks the stream handler and the offer guard (its offers would fail)
                with gr.Column(visible=False) as microphone_box:
                    microphone = WebRTC(label="Microphone", mode="send", modality="audio", elem_id="microphone",
                                        rtc_configuration=ice.rtc_configuration,
                                        track_constraints=MICROPHONE_CONSTRAINTS, button_labels=MICROPHONE_LABELS,
                                        full_screen=False)
                    microphone_refused = gr.Button("Microphone refused", elem_id=page_scripts.MICROPHONE_REFUSED_ID)
                audio = WebRTC(label="Voice", mode="receive", modality="audio", elem_id="avatar-audio",
                               rtc_configuration=ice.rtc_configuration)
                with gr.Group():
                    remove_bg = gr.Checkbox(label="Remove background", value=False, elem_id="remove-bg")
                    bg_kind = gr.Radio([("Colour", "color"), ("Preset", "preset"), ("Upload", "upload")],
                                       value="color", label="Replace with")
                    bg_color = gr.ColorPicker(value="#1e293b", label="Colour")
                    bg_preset = gr.Dropdown(backgrounds.preset_names(), value="studio", label="Preset",
                                            allow_custom_value=True)  # as Quality: our message for a bad one
                    bg_upload = gr.File(label=f"Picture (PNG, JPEG or WebP, up to "
                                              f"{backgrounds.UPLOAD_MAX_BYTES // 2**20} MB)",
                                        file_types=backgrounds.UPLOAD_SUFFIXES, type="filepath")
                with gr.Accordion("Stream stats", open=False, elem_id="stream-stats"):
                    stats_box = gr.Textbox(show_label=False, lines=7, max_lines=7, interactive=False,
                                           container=False, elem_id="stats")

        # an action's error is said in the status log, not in a toast over the buttons: queued
        # actions raise an invisible gr.Error (user_errors), and the log is shown at once
        created = new_btn.click(new_session, [avatar_id, voice_id, quality], [session_id, status],
                                api_name="new_session")
        started = start_btn.click(start_stream, None, status, api_name="start_stream")
        # queue=False: Gradio's queue adds 73-189 ms before a call starts (BENCHMARKS.md); these are
        # light async calls that need no queue slot (Talk's stays open while the reply is spoken).
        # An unqueued call's error is always a toast (workarounds.py, 13): the page's buttons raise
        # none, and the API's endpoints of the same names (not triggered by the page) raise theirs
        repeat_btn.click(repeat_from_page, message, status, api_name=False, queue=False)
        message.submit(repeat_from_page, message, status, api_name=False, queue=False)
        talk_btn.click(talk_from_page, [message, answer_with], status, api_name=False, queue=False)
        interrupt_btn.click(interrupt_from_page, None, status, api_name=False, queue=False)
        gr.on([], repeat, message, status, api_name="repeat", queue=False)
        gr.on([], talk, [message, answer_with], status, api_name="talk", queue=False)
        gr.on([], interrupt, None, status, api_name="interrupt", queue=False)
        closed = close_btn.click(close_session, None, [session_id, status], api_name="close_session")
        started.success(lambda: gr.Column(visible=True), None, microphone_box, api_name=False, queue=False)
        closed.then(lambda: gr.Column(visible=False), None, microphone_box, api_name=False, queue=False)
        # the player lets go of the last frame at once, instead of showing it frozen
        closed.success(None, None, None, js=page_scripts.STREAM_ENDED_JS, api_name=False, queue=False)
        answer_with.change(set_answer_with, answer_with, None, api_name=False, queue=False)
        bg_inputs = [remove_bg, bg_kind, bg_color, bg_preset, bg_upload]
        background = gr.on([remove_bg.change, bg_kind.change, bg_color.change, bg_preset.change, bg_upload.upload],
                           set_background, bg_inputs, status, api_name="set_background", trigger_mode="always_last")
        actions = [created, started, closed, background]
        if capabilities.upstream_sessions:
            actions.append(leaked_btn.click(close_leaked, operator_token, status,
                                            api_name=f"close_leaked_{service.name}_sessions"))
        for action in actions:  # its error line, now rather than at the next refresh
            action.failure(status_now, None, [status, log_version], show_progress="hidden", api_name=False,
                           queue=False)

        server_ice_follows([video, audio, microphone], ice)  # no public STUN unless configured
        for component in (video, audio):  # a stream slot only for a started session's own browser
            guard_offers(component, controller.may_stream)
        microphone_of = guard_offers(microphone, controller.may_stream)  # webrtc_id -> its browser
        # both streams start only when start_stream succeeded, and read the same session's clock
        stream_limit = settings.max_sessions * 2
        runtime = lambda: sessions.runtime  # noqa: E731 - set at start-up, used when a stream ends
        video_frames = partial(streams.video_frames, sessions.stream_source, peer_closer(video, runtime))
        audio_chunks = partial(streams.audio_chunks, sessions.stream_source, peer_closer(audio, runtime))
        video.stream(StableVideoHandler(video_frames, fps=FPS), inputs=[session_id],  # type: ignore[arg-type]
                     outputs=[video], trigger=started.success, concurrency_limit=stream_limit, time_limit=None)
        audio.stream(audio_chunks, inputs=[session_id], outputs=[audio],
                     trigger=started.success, concurrency_limit=stream_limit, time_limit=None)
        # the microphone's audio goes to the listener of the session of the browser that connected it
        hearing = MicrophoneHandler(lambda webrtc_id: controller.listener(microphone_of(webrtc_id)),
                                    peer_closer(microphone, runtime))
        microphone.stream(hearing, inputs=[microphone], outputs=[microphone],
                          concurrency_limit=settings.max_sessions, time_limit=None)
        microphone.start_recording(microphone_on, None, None, api_name=False, queue=False)
        microphone.stop_recording(microphone_off, None, None, api_name=False, queue=False)
        microphone_refused.click(microphone_refused_by_browser, None, None, api_name=False, queue=False)

        timer = gr.Timer(1.0)
        refreshed = [status, log_version, transcript, chat_version, stats_box, stats_shown]
        # queue=False: every open page polls each second, and must not wait behind the queue when it is busy
        timer.tick(refresh, [log_version, chat_version, stats_shown], refreshed, show_progress="hidden",
                   api_name=False, queue=False)
        demo.load(refresh, [log_version, chat_version, stats_shown], refreshed, api_name=False)
        if capabilities.upstream_lists:
            demo.load(load_choices, None, [avatar_id, voice_id], api_name=False)
        demo.unload(unload)
        gr.api(status_log, api_name="status")
        # queue=False: read-only and light; a script watching a busy server must not wait behind its queue
        gr.api(stream_stats, api_name="stats", queue=False)

    # a full queue refuses new events at once ("queue is full") instead of letting them hang
    demo.queue(default_concurrency_limit=max(8, settings.max_sessions * 2), max_size=QUEUE_MAX_SIZE)
    return demo, controller


def lifespan(sessions: SessionManager, max_sessions: int) -> Callable[[Any], Any]:
    """Gradio's server start-up, on its event loop: the runtime is set up once, here."""

    @asynccontextmanager
    async def run(app: Any) -> AsyncIterator[None]:
        no_tracebacks_to_clients(app)
        sessions.start(Runtime.on_running_loop(max_sessions))
        yield

    return run


def warm_up(service: AvatarService, recognizer: Recognizer) -> None:
    """Start-up's slow loads, in a thread while the server starts: the first visitor waits for none."""
    service.warm_up()
    silero_session()
    # ~1 s and ~280 MB, once for all sessions: the first spoken turn must not wait. When it
    # fails, the reason is logged, and each spoken turn says voice input is not available.
    with contextlib.suppress(RecognizerUnavailableError):
        recognizer.load()


def close_everything(sessions: SessionManager, service: AvatarService, reason: str) -> None:
    """Close every session, then the provider, on the server's event loop (they own tasks there)."""
    if not sessions.started:
        return

    async def close() -> None:
        await sessions.close_all(reason)
        await service.aclose()
        await sessions.runtime.tasks.cancel_all()

    try:
        sessions.runtime.run_from_thread(close(), timeout_s=service.close_timeout_s)
    except Exception:
        log.exception("closing sessions at shutdown failed")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Streaming Avatar")
    parser.add_argument("--share", action="store_true", help="ask Gradio for a public share link")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"Cannot start: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.secret_values())
    errors_say_what_went_wrong()
    no_content_type_prints()
    pin_mmap_threshold()
    forget_finished_events()
    service = service_for(settings)
    recognizer = Recognizer(settings.stt_model)
    warm = threading.Thread(target=warm_up, args=(service, recognizer), daemon=True)
    warm.start()
    ice = IceConfiguration(settings)
    ice.start()
    demo, controller = build_app(settings, ice, service, recognizer)
    share = args.share or settings.share
    demo.launch(server_name=settings.gradio_server_name, server_port=settings.gradio_server_port,
                share=share, max_file_size=backgrounds.UPLOAD_MAX_BYTES, prevent_thread_lock=True,
                app_kwargs={"lifespan": lifespan(controller.sessions, settings.max_sessions),
                            # oversized bodies refused before Gradio parses them
                            "middleware": [Middleware(RequestSizeLimit,
                                                      max_upload_bytes=backgrounds.UPLOAD_MAX_BYTES)]},
                state_session_capacity=MAX_BROWSERS)  # Gradio's own per-browser state: the same bound
    if share and not demo.share_url and not demo.space_id:  # on a Space, Gradio says why itself
        log.warning("No public share link: it could not be created (Gradio's share service cannot be "
                    "reached from here). Serving locally only, at %s", demo.local_url)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    frozen = False
    try:
        while not stop.wait(0.5):
            # start-up is over: keep it out of collections (not a session, which must be freed)
            if not frozen and not warm.is_alive() and not len(controller.sessions):
                freeze_startup_heap()
                frozen = True
    except KeyboardInterrupt:
        pass
    log.info("shutting down: closing %d session(s)", len(controller.sessions))
    close_everything(controller.sessions, service, "the server is shutting down")
    # the process must not end inside CTranslate2 (a load or a recognition): it aborts
    warm.join(timeout=60)
    recognizer.close()
    ice.stop()
    demo.close()
    time.sleep(0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
