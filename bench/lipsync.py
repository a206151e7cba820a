"""Lip sync (python -m bench.lipsync [sentences per voice]): the real app in its own
process, a headless aiortc viewer, 20 fixed sentences per offline voice through the
whole path (the media clock, VP8 and Opus on loopback), for the mouth from phonemes
(LIP_SYNC=phonemes) and, side by side in the same run, the loudness mouth before it
(LIP_SYNC=loudness) as the baseline:

1. Match: the share of received frames (during each sentence) whose mouth, read by
   template matching against the look's shape sprites (tests/support/mouth_reading.py),
   is the shape the voice's phonemes call for at that frame's tick. The tick of a frame
   is the one whose audio is heard for most of the 40 ms the frame is on screen, counted
   from when the sentence's first sample was heard (the received sound's loudness lined
   up with the sentence's own, in 5 ms steps), so the match includes any audio/video
   offset of the transport (VIDEO_DELAY_MS, the app's default, is meant to cancel it). The same
   share with each sentence's frames moved by the best of -1, 0, +1 frame says how
   much of a miss is that offset rather than a wrong shape.
2. Offset: for every phone whose shape differs from the one before it, the arrival of
   the first frame showing that shape (from 200 ms before the phone to its end) minus
   when the phone began in the received audio; median and p95 of |offset|.
3. Render cost per frame at 720p (in this process, the avatar's whole tick: speech
   buffer, mouth choice, drawing), phonemes vs loudness, alternating, same sentences.
4. The voices' own timing: how much later their phones are than their loudness pattern
   says (vowels loud, stops and pauses quiet), over the same sentences.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections import Counter

import numpy as np

from avatar_core.media.format import AUDIO_RATE, SAMPLES_PER_TICK, TICK_S
from avatar_core.providers.local.avatar import LocalAvatar
from avatar_core.providers.local.mouth_shapes import SHAPES, mouth_pose
from avatar_core.providers.local.phonemes import Phone
from avatar_core.providers.local.speech import Spoken, default_catalog
from avatar_core.providers.local.visemes import viseme_track
from tests.support.app_process import AppProcess
from tests.support.mouth_reading import MouthReader, expected_shapes, frame_ticks, sound_arrival
from tests.support.recording import Recorder
from tests.support.webrtc_viewer import AUDIO_PCM_RATE, SPEECH_RMS, Viewer

SENTENCES = [
    "Bob moved the map, while you wait.", "My mother bought a blue boot.", "Please put the paper back by the lamp.",
    "We will meet at five o'clock.", "The big brown bear ate more berries.", "Maybe we should move back home.",
    "Thank you for your help today.", "Who would want a wet umbrella?", "I think the theatre opens at three.",
    "Five flat fish swam very far.", "Look at the moon above the pool.", "Peter packed a bag of apples.",
    "Should we watch the show or go?", "Choose a cheap chair for the porch.", "Bring me the book from the bed.",
    "Will you walk with me to the well?", "The sun sets slowly over the sea.", "A red boat floats on the lake.",
    "Mom made warm bread this morning.", "Every week we visit the zoo.",
]
VOICES = ["heart", "espeak-us-male", "espeak-uk-female"]
LOOK, QUALITY = "ava", "low"
FINISHED = "Avatar finished speaking."
VOWELS = {"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"}
QUIET = {"sil", "P", "B", "T", "D", "K", "G"}


def reference(voice_id: str, text: str) -> Spoken:
    [spoken] = default_catalog().get(voice_id).sentences(text)
    assert spoken.phones is not None
    return spoken


def onset_offsets(phones: list[Phone], readings: list[tuple[float, str]], start: float) -> list[float]:
    shape_of = [SHAPES[mouth_pose(viseme_track([p], p.end_s + 0.01).at((p.start_s + p.end_s) / 2), 1.0).shape].name
                for p in phones]  # each phone's own shape, without its neighbours
    offsets = []
    for i in range(1, len(phones)):
        p, shape = phones[i], shape_of[i]
        if shape == shape_of[i - 1] or shape == "rest":
            continue
        at = start + p.start_s
        # from 200 ms before, but not before the phone before it (its own shape is another)
        since = max(at - 0.2, start + phones[i - 1].start_s)
        seen = [t for t, s in readings if s == shape and since <= t <= start + p.end_s]
        if seen:
            offsets.append(seen[0] - at)
    return offsets


async def run_voice(url: str, voice_id: str, sentences: list[str], reader: MouthReader) -> dict:
    matched, best_shift_matched, frames, offsets = 0, 0, 0, []
    misses: Counter[tuple[str, str]] = Counter()  # (expected, read)
    async with Viewer(url, mouth_reader=reader) as viewer:
        await viewer.acall("new_session", LOOK, voice_id, QUALITY)
        await viewer.start()
        await asyncio.sleep(1.5)
        for text in sentences:
            spoken = reference(voice_id, text)
            duration = spoken.audio.size / AUDIO_RATE
            expected = expected_shapes(viseme_track(spoken.phones or [], duration), int(duration / TICK_S))
            mark = await viewer.log_mark()
            t_repeat = time.monotonic()
            await viewer.acall("repeat", text)
            await viewer.wait_for_line(FINISHED, after=mark, timeout=20)
            await asyncio.sleep(0.4)
            near = viewer.audio.first_time(lambda rms: rms > SPEECH_RMS, t_repeat)
            if near is None:
                continue
            packets = [(t, pcm) for t, pcm in viewer.audio_packets if near - 1 <= t <= near + duration + 1]
            start = sound_arrival(packets, spoken.audio, AUDIO_PCM_RATE)
            if start is None:
                continue
            readings = [(t, reader.read(crop)) for t, crop in viewer.mouth_crops
                        if start - 0.3 <= t <= start + duration + 0.3]
            ticks = [(k, r.shape) for k, r in frame_ticks(readings, start)]
            during = [(k, s) for k, s in ticks if 0 <= k < len(expected)]
            frames += len(during)
            matched += sum(s == expected[k] for k, s in during)
            misses.update((expected[k], s) for k, s in during if s != expected[k])
            best_shift_matched += max(sum(s == expected[k + d] for k, s in during if 0 <= k + d < len(expected))
                                      for d in (-1, 0, 1))
            shapes_seen = [(t, r.shape) for t, r in readings]
            offsets += onset_offsets(spoken.phones or [], shapes_seen, start)
    return {"frames": frames, "match": matched / max(1, frames), "best_shift": best_shift_matched / max(1, frames),
            "offsets_ms": 1000 * np.array(offsets), "misses": misses}


def render_cost(sentences: list[str], rounds: int = 3) -> dict[str, list[float]]:
    """ms per tick at 720p while speaking, the two mouths alternating sentence by sentence."""
    costs: dict[str, list[float]] = {"phonemes": [], "loudness": []}
    voice = default_catalog().get("heart")

    async def measure() -> None:
        for _ in range(rounds):
            for text in sentences:
                for mode in costs:
                    avatar = LocalAvatar(LOOK, voice, "high", Recorder(), lips_follow_phonemes=mode == "phonemes")
                    await avatar.speak(text)
                    while avatar.busy and avatar.queued_audio_s < 0.5:
                        await asyncio.sleep(0.005)
                    await asyncio.sleep(0.05)  # the whole (one-sentence) text is synthesised
                    index = 0
                    while avatar.queued_audio_s > SAMPLES_PER_TICK / AUDIO_RATE:
                        began = time.perf_counter()
                        avatar.tick(index)
                        costs[mode].append(1000 * (time.perf_counter() - began))
                        index += 1
                    await avatar.close()

    asyncio.run(measure())
    return costs


def voice_timing(voice_id: str, sentences: list[str]) -> float:
    """ms by which a voice's phones come after its loudness pattern (vowels loud, stops quiet)."""
    lags = np.arange(-20, 21)  # 5 ms steps
    scores = np.zeros(len(lags))
    for text in sentences:
        spoken = reference(voice_id, text)
        hop = AUDIO_RATE // 200
        env = np.array([np.sqrt(np.mean(spoken.audio[i : i + hop] ** 2))
                        for i in range(0, spoken.audio.size - hop, hop)])
        pattern = np.full(len(env), 0.5)
        for p in spoken.phones or []:
            pattern[int(p.start_s * 200) : int(p.end_s * 200)] = (
                1.0 if p.phoneme in VOWELS else 0.0 if p.phoneme in QUIET else 0.5)
        env, pattern = (env - env.mean()) / env.std(), (pattern - pattern.mean()) / (pattern.std() + 1e-9)
        for k, lag in enumerate(lags):
            a, b = (env[: len(env) - lag], pattern[lag:]) if lag >= 0 else (env[-lag:], pattern[: len(pattern) + lag])
            scores[k] += float(np.mean(a * b))
    return float(5 * lags[int(np.argmax(scores))])


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else len(SENTENCES)
    sentences = SENTENCES[:count]
    reader = MouthReader(LOOK, QUALITY)
    results: dict[tuple[str, str], dict] = {}
    for mode in ("phonemes", "loudness"):
        app = AppProcess({"LIP_SYNC": mode, "ADMISSION_MIN_FPS": "0"}).wait_ready()
        try:
            app.wait_for_output("speech recognition model loaded", timeout=120)  # start-up's loads are done
            for voice_id in VOICES:
                results[(mode, voice_id)] = r = asyncio.run(run_voice(app.url, voice_id, sentences, reader))
                print(f"{mode:>9} {voice_id:>17}: {r['frames']} frames, match {100 * r['match']:.0f} %", flush=True)
        finally:
            app.stop()
    print(f"\nLip sync, {count} sentences per voice, {LOOK} {QUALITY}, WebRTC VP8/Opus on loopback")
    print(f"{'voice':>17} | {'match: phonemes / loudness':>27} | {'at best shift':>14} | "
          f"{'onset offset median / p95 |.| ms (n): phonemes':>48} | {'loudness':>20} | voice timing")
    for voice_id in VOICES:
        ph, lo = results[("phonemes", voice_id)], results[("loudness", voice_id)]

        def offsets(r: dict) -> str:
            o = r["offsets_ms"]
            if not o.size:
                return "-"
            return f"{np.median(o):+.0f} / {np.percentile(np.abs(o), 95):.0f} ({o.size})"

        print(f"{voice_id:>17} | {100 * ph['match']:12.0f} % / {100 * lo['match']:4.0f} % {'':>5} | "
              f"{100 * ph['best_shift']:5.0f} / {100 * lo['best_shift']:3.0f} % | {offsets(ph):>48} | "
              f"{offsets(lo):>20} | {voice_timing(voice_id, sentences):+.0f} ms")
    for voice_id in VOICES:
        misses = results[("phonemes", voice_id)]["misses"]
        print(f"{voice_id}: most frequent misses (expected -> read, frames): "
              + ", ".join(f"{a} -> {b} {n}" for (a, b), n in misses.most_common(5)))
    costs = render_cost(sentences[:5])
    ph, lo = costs["phonemes"], costs["loudness"]
    print(f"\nRender cost per frame at 1280x720 (the avatar's tick; {len(ph)} + {len(lo)} ticks): phonemes "
          f"mean {statistics.mean(ph):.3f} ms p95 {np.percentile(ph, 95):.3f}; loudness mean "
          f"{statistics.mean(lo):.3f} ms p95 {np.percentile(lo, 95):.3f}; difference "
          f"{statistics.mean(ph) - statistics.mean(lo):+.3f} ms (target <= +0.5)")


if __name__ == "__main__":
    main()
