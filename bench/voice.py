"""Voice input (python -m bench.voice [tries] [max sessions] [only sessions, from]): the real app in its own process
with the LLM stand-in answering at once, a headless viewer (tests/), and an aiortc
microphone sending our offline voices through the page's microphone component (Opus,
real time), all on loopback, in one run:

1. Voice to voice: the end of the person's speech (the last loud sample of the WAV, when
   the microphone sent it) -> the first speech audio of the answer at the viewer. Parts:
   pause detection (speech end -> the turn's end, as the app logs it), recognition (turn
   end -> words, logged; begun during the pause), LLM (words -> the stand-in's first chunk,
   with routing and the request), synthesis (the answer's first sentence, timed in this
   process with the same voice) and transport (the rest: queueing, the media clock, Opus,
   the viewer's jitter buffer).
2. Barge-in: the onset of the person's speech (first loud sample) while the avatar says a
   long Repeat -> the viewer's audio is silent for good (no speech packet for 1.5 s: longer
   than the story's own pauses, shorter than the late answer to the interruption).
3. Word error rate: 30 fixed sentences, our three voices in turn, through WebRTC; the words
   the LLM stand-in was asked, against the sentence (jiwer).
4. Cost: CPU seconds of recognition (and of the pause detector) per second of speech,
   measured in this process on the same sentences; and N sessions holding a conversation at
   once (a question every 6 s each): the viewers' frame rate and voice to voice p50.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
import time

import numpy as np

from avatar_core.providers.local.speech import default_catalog
from avatar_core.voice.pauses import PauseDetector
from avatar_core.voice.recognizer import Recognizer
from bench.stream import cpu_seconds
from tests.support.app_process import AppProcess
from tests.support.microphone import MicrophoneTrack
from tests.support.openai_process import OpenAIServerProcess
from tests.support.speech_audio import silence, spoken, word_error_rate
from tests.support.webrtc_viewer import SPEECH_RMS, Viewer

QUESTIONS = ["What is the capital of France?", "Can you tell me a joke?", "How are you doing today?",
             "What time is it where you are?", "Please say something nice."]
ANSWER = "Paris is lovely in the spring."
LONG_REPEAT = ("Let me tell you a long story about a lighthouse keeper, who lived alone on a rocky island far "
               "from the mainland, and wrote down the name of every ship that passed his light.")
SENTENCES = [  # 30 fixed sentences, as a visitor would say them to an avatar
    "Hello there, how are you today?", "What is the weather like in London?", "Can you tell me a short story?",
    "I would like to book a table for two.", "What time does the museum open tomorrow?",
    "Please explain how a rainbow forms.", "Who wrote the novel Pride and Prejudice?",
    "How many minutes are there in a day?", "Could you recommend a good book to read?",
    "My favourite colour is green.", "What is the tallest mountain in the world?",
    "I am looking for a quiet place to study.", "Do you know any good recipes for dinner?",
    "How far is the moon from the earth?", "Tell me something interesting about whales.",
    "Where can I buy fresh bread near here?", "What languages do you speak?", "Thank you very much for your help.",
    "Can you help me plan a trip to Spain?", "Why is the sky blue during the day?",
    "I need a gift idea for my sister.", "What does a software engineer do?", "How do I make a cup of tea?",
    "Please tell me the news for today.", "What is the best way to learn the piano?",
    "I think it might rain this afternoon.", "How old is the oldest tree on earth?",
    "Could you speak a little more slowly?", "What is your name and where are you from?", "Goodbye, see you soon.",
]
VOICES = ["heart", "espeak-us-male", "espeak-uk-female"]
TURN_LOG = re.compile(r"voice turn of [\d.]+ s: words (\d+) ms after its end \(recognition (\d+) ms")
WALL = time.time() - time.monotonic()  # the stand-in's wall-clock times -> this process's monotonic


def loud_bounds(audio: np.ndarray, rate: int = 16_000, level: float = 0.02) -> tuple[float, float]:
    loud = np.flatnonzero(np.abs(audio) > level)
    return loud[0] / rate, (loud[-1] + 1) / rate


def first_speech(viewer: Viewer, since: float) -> float | None:
    return viewer.audio.first_time(lambda rms: rms > SPEECH_RMS, since)


def silent_from(viewer: Viewer, since: float, hold_s: float = 0.3) -> float | None:
    """The first packet time >= since after which no speech packet comes for `hold_s`."""
    times, values = viewer.audio.times, viewer.audio.values
    start = next((i for i, t in enumerate(times) if t >= since), None)
    if start is None:
        return None
    for i in range(start, len(times)):
        window = [v for t, v in zip(times[i:], values[i:], strict=False) if t <= times[i] + hold_s]
        if times[-1] >= times[i] + hold_s and max(window) < SPEECH_RMS:
            return times[i]
    return None


async def until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return predicate()


async def conversation(viewer: Viewer) -> MicrophoneTrack:
    await viewer.acall("new_session", "ava", "heart", "low")
    await viewer.start()
    mic = await viewer.microphone()
    await asyncio.sleep(1.0)
    return mic


async def ask(viewer: Viewer, mic: MicrophoneTrack, llm: OpenAIServerProcess, text: str, voice: str = "heart",
              wait_answer: bool = True) -> dict:
    """Say `text`; when it was asked of the LLM, and (wait_answer) when the viewer heard the answer."""
    speech = spoken(text, voice)
    _, last = loud_bounds(speech)
    asked = len(llm.state()["requests"])
    said = mic.say(np.concatenate([speech, silence(1.5)]))
    ok = await until(lambda: len(llm.state()["requests"]) > asked, 15)
    state = llm.state()
    heard = state["requests"][asked]["messages"][-1]["content"] if ok else ""
    assert said.started_at is not None
    speech_end = said.time_of(last)
    result = {"text": text, "heard": heard, "speech_end": speech_end,
              "first_chunk": state["sent_at"][0] - WALL if ok and state["sent_at"] else None, "audio": None}
    if wait_answer and ok:
        await until(lambda: first_speech(viewer, speech_end) is not None, 10)
        result["audio"] = first_speech(viewer, speech_end)
        await until(lambda: silent_from(viewer, result["audio"] or speech_end, 0.6) is not None, 15)
    else:
        await until(lambda: mic.quiet, 10)
    return result


def turn_lines(app: AppProcess) -> list[tuple[float, float]]:
    """(ms from the turn's end to its words, recognition ms) of each voice turn the app logged."""
    return [(float(m[1]), float(m[2])) for m in TURN_LOG.finditer(app.output())]


def synthesis_ms(text: str, tries: int = 5) -> float:
    voice = default_catalog().get("heart")
    next(iter(voice.sentences("Warm up.")))
    times = []
    for _ in range(tries):
        began = time.perf_counter()
        next(iter(voice.sentences(text)))
        times.append(1000 * (time.perf_counter() - began))
    return float(np.median(times))


async def voice_to_voice(app: AppProcess, llm: OpenAIServerProcess, tries: int) -> dict:
    llm.script(chunks=[ANSWER])
    async with Viewer(app.url, analyse_video=False) as viewer:
        mic = await conversation(viewer)
        before = len(turn_lines(app))
        results = [await ask(viewer, mic, llm, QUESTIONS[i % len(QUESTIONS)]) for i in range(tries)]
        await viewer.acall("close_session")
    logged = turn_lines(app)[before:]
    done = [(r, line) for r, line in zip(results, logged, strict=False) if r["audio"] and r["first_chunk"]]
    total = [1000 * (r["audio"] - r["speech_end"]) for r, _ in done]
    words_at = [r["first_chunk"] for r, _ in done]  # the LLM stand-in answers at once
    to_words = [1000 * (w - r["speech_end"]) for w, (r, _) in zip(words_at, done, strict=True)]
    recognition_wait = [line[0] for _, line in done]
    return {"tries": len(done), "of": tries, "total": total,
            "pause": [t - w for t, w in zip(to_words, recognition_wait, strict=True)],
            "recognition": recognition_wait, "recognition_compute": [line[1] for _, line in done],
            "llm_and_synthesis_and_transport": [1000 * (r["audio"] - r["first_chunk"]) for r, _ in done],
            "synthesis": synthesis_ms(ANSWER)}


async def barge_in(app: AppProcess, llm: OpenAIServerProcess, tries: int) -> list[float]:
    llm.script(chunks=["Okay."], first_delay_s=3)  # the answer to the interruption comes late: silence shows
    stop = spoken("Wait, stop please.")
    onset, _ = loud_bounds(stop)
    latencies = []
    async with Viewer(app.url, analyse_video=False) as viewer:
        mic = await conversation(viewer)
        for _ in range(tries):
            await viewer.acall("repeat", LONG_REPEAT)
            if not await until(lambda: first_speech(viewer, time.monotonic() - 0.1) is not None, 10):
                continue
            await asyncio.sleep(1.2)  # past the echo grace window
            said = mic.say(np.concatenate([stop, silence(1.0)]))
            await until(lambda: mic.quiet, 10)
            began = said.time_of(onset)
            # silent for good: the story's own pauses (its commas) are shorter than this, and the
            # answer to the interruption comes seconds later
            await until(lambda began=began: silent_from(viewer, began, 1.5) is not None, 5)
            silent = silent_from(viewer, began, 1.5)
            if silent is not None:
                latencies.append(1000 * (silent - began))
            await asyncio.sleep(4.5)  # the late "Okay." is said and over
        await viewer.acall("close_session")
    return latencies


async def accuracy(app: AppProcess, llm: OpenAIServerProcess) -> tuple[float, list[tuple[str, str, float]]]:
    llm.script(chunks=["Okay."])
    rows = []
    async with Viewer(app.url, analyse_video=False) as viewer:
        mic = await conversation(viewer)
        for i, text in enumerate(SENTENCES):
            result = await ask(viewer, mic, llm, text, VOICES[i % len(VOICES)], wait_answer=False)
            rows.append((text, result["heard"], word_error_rate(text, result["heard"])))
            await asyncio.sleep(1.0)
        await viewer.acall("close_session")
    words = [len(text.split()) for text, _, _ in rows]
    return float(np.average([r[2] for r in rows], weights=words)), rows


def cost() -> dict:
    """CPU seconds per second of speech, in this process, on one thread as the app runs them."""
    recognizer = Recognizer()
    recognizer.load()
    audio = [np.concatenate([silence(0.3), spoken(t, VOICES[i % 3]), silence(0.5)]) for i, t in enumerate(SENTENCES)]
    seconds = sum(a.size for a in audio) / 16_000
    began = time.process_time()
    for a in audio:
        asyncio.run(recognizer.transcribe(a))
    recognition = time.process_time() - began
    recognizer.close()
    detector = PauseDetector(500, 15)
    began = time.process_time()
    for a in audio:
        for i in range(0, a.size, 1536):
            detector.feed(a[i : i + 1536])
    return {"recognition": recognition / seconds, "pauses": (time.process_time() - began) / seconds,
            "seconds": seconds}


async def sessions_at_once(app: AppProcess, llm: OpenAIServerProcess, count: int, seconds: float) -> dict:
    llm.script(chunks=[ANSWER])
    viewers = [Viewer(app.url, analyse_video=False) for _ in range(count)]
    try:
        mics = [await conversation(v) for v in viewers]
        t0, cpu0 = time.monotonic(), cpu_seconds(app.proc.pid)
        totals: list[float] = []

        async def talk(viewer: Viewer, mic: MicrophoneTrack, offset: float) -> None:
            await asyncio.sleep(offset)
            while time.monotonic() - t0 < seconds - 6:
                speech = spoken(QUESTIONS[0])
                _, last = loud_bounds(speech)
                said = mic.say(np.concatenate([speech, silence(1.5)]))
                await until(lambda said=said: said.started_at is not None, 5)
                end = said.time_of(last)
                await until(lambda end=end: first_speech(viewer, end) is not None, 6)
                heard = first_speech(viewer, end)
                if heard is not None:
                    totals.append(1000 * (heard - end))
                await asyncio.sleep(max(0.0, end + 5 - time.monotonic()))

        # with several sessions the LLM stand-in's requests interleave: the first chunk is not per session
        await asyncio.gather(*(talk(v, m, 6 * i / count) for i, (v, m) in enumerate(zip(viewers, mics,
                                                                                        strict=True))))
        t1 = time.monotonic()
        cpu = (cpu_seconds(app.proc.pid) - cpu0) / (t1 - t0)
        fps = [v.video.fps(t0) for v in viewers]
        return {"sessions": count, "min_fps": min(fps), "v2v": np.percentile(totals, [50, 95]) if totals else
                [np.nan, np.nan], "turns": len(totals), "cpu": 100 * cpu}
    finally:
        for v in viewers:
            with contextlib.suppress(Exception):  # one that never got a session
                await v.acall("close_session")
            await v.close()


def p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> None:
    tries = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    max_sessions = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    first_sessions = int(sys.argv[3]) if len(sys.argv) > 3 else 0  # given: only that table, from that many
    llm = OpenAIServerProcess()
    app = AppProcess({"OPENAI_BASE_URL": llm.base_url, "OPENAI_API_KEY": "bench-key",
                      "MAX_SESSIONS": str(max(4, max_sessions)), "ADMISSION_MIN_FPS": "0"}).wait_ready()
    try:
        time.sleep(3)  # the recognizer loads in the start-up thread
        if not first_sessions:
            print_voice_to_voice(asyncio.run(voice_to_voice(app, llm, tries)))
            barge = asyncio.run(barge_in(app, llm, tries))
            print(f"Barge-in ({len(barge)}/{tries} tries; ms): speech onset -> avatar silent at the viewer: p50 "
                  f"{p(barge, 50):.0f}  p95 {p(barge, 95):.0f}  (target p50 <= 400)", flush=True)
            print_accuracy(*asyncio.run(accuracy(app, llm)))
        print("Sessions in conversation at once (30 s, a question every 6 s each):")
        print(f"  {'sessions':>8} {'min fps':>8} {'v2v p50/p95 ms':>15} {'turns':>6} {'app CPU %core':>14}")
        for n in range(max(1, first_sessions), max_sessions + 1):
            r = asyncio.run(sessions_at_once(app, llm, n, 30))
            print(f"  {r['sessions']:>8} {r['min_fps']:8.1f} {r['v2v'][0]:7.0f}/{r['v2v'][1]:<7.0f} {r['turns']:>6} "
                  f"{r['cpu']:13.0f}%", flush=True)
    finally:
        app.stop()
        llm.stop()
    costs = cost()
    print(f"Cost per second of speech: recognition {costs['recognition']:.3f} CPU s, pause detector "
          f"{costs['pauses']:.4f} CPU s ({costs['seconds']:.0f} s of speech)")


def print_voice_to_voice(v2v: dict) -> None:
    print(f"Voice to voice ({v2v['tries']}/{v2v['of']} tries; ms): end of speech -> first answer audio at the viewer")
    print(f"  total p50 {p(v2v['total'], 50):.0f}  p95 {p(v2v['total'], 95):.0f}  (target p50 <= 900, p95 <= 1200)")
    print(f"  pause detection p50 {p(v2v['pause'], 50):.0f}  p95 {p(v2v['pause'], 95):.0f}")
    print(f"  recognition, after the turn's end p50 {p(v2v['recognition'], 50):.0f}  p95 "
          f"{p(v2v['recognition'], 95):.0f}  (compute p50 {p(v2v['recognition_compute'], 50):.0f}, begun "
          "during the pause)")
    rest = v2v["llm_and_synthesis_and_transport"]
    print(f"  LLM stand-in's first chunk -> answer audio at the viewer p50 {p(rest, 50):.0f}  p95 {p(rest, 95):.0f}"
          f"  (of which synthesis of the first sentence ~{v2v['synthesis']:.0f}; the rest is transport: queue, "
          "clock, Opus, jitter buffer)", flush=True)


def print_accuracy(wer: float, rows: list[tuple[str, str, float]]) -> None:
    print(f"Word error rate over {len(rows)} sentences through WebRTC (Opus): {100 * wer:.1f} % (target <= 10 %)")
    for text, heard, error in rows:
        if error:
            print(f"  {error:4.2f}  {text!r} -> {heard!r}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
