"""Where a person's turn starts and ends in microphone audio: Silero VAD (the ONNX model
inside faster-whisper's package: nothing is downloaded) gives each 32 ms a speech
probability; a turn starts after enough speech and ends at a pause of `pause_ms`, or is
cut at `max_turn_s`.

One PauseDetector per microphone; the model session is shared, its state is not.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

SAMPLE_RATE = 16_000  # what Silero and Whisper take
FRAME = 512  # samples per step: 32 ms at 16 kHz, Silero's window
CONTEXT = 64  # samples of the previous frame the model sees with each one
FRAME_S = FRAME / SAMPLE_RATE


_loading = threading.Lock()


def silero_session() -> Any:
    """The Silero VAD v6 model shipped in faster-whisper's assets, loaded once (the start-up
    thread and a first session may ask at the same time), run on one thread."""
    with _loading:
        return _silero_session()


@cache
def _silero_session() -> Any:
    import faster_whisper
    import onnxruntime

    path = os.path.join(os.path.dirname(faster_whisper.__file__), "assets", "silero_vad_v6.onnx")
    options = onnxruntime.SessionOptions()
    options.inter_op_num_threads = options.intra_op_num_threads = 1
    options.log_severity_level = 4
    return onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"], sess_options=options)


class SpeechProbability:
    """Silero run one frame at a time, its recurrent state carried between frames."""

    def __init__(self) -> None:
        self._session = silero_session()
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), np.float32)
        self._c = np.zeros((1, 1, 128), np.float32)
        self._context = np.zeros(CONTEXT, np.float32)

    def __call__(self, frame: np.ndarray) -> float:
        window = np.concatenate([self._context, frame.astype(np.float32)])[None, :]
        probability, self._h, self._c = self._session.run(None, {"input": window, "h": self._h, "c": self._c})
        self._context = frame[-CONTEXT:].astype(np.float32)
        return float(probability.reshape(-1)[0])


@dataclass(frozen=True)
class TurnStarted:
    at_s: float  # microphone time of the first speech frame


@dataclass(frozen=True)
class Pausing:
    """`speculate_ms` of quiet in a turn: it may be ending, so its words can be recognised
    now, while the pause goes on (the same audio as TurnEnded's, less the rest of the pause)."""

    audio: np.ndarray


@dataclass(frozen=True)
class TurnEnded:
    audio: np.ndarray  # the turn at 16 kHz, from a little before its first speech
    started_at_s: float
    cut: bool  # max_turn_s reached while speech went on


TurnEvent = TurnStarted | Pausing | TurnEnded
CLEAR_SPEECH = 0.8  # a frame this likely speech is clearly speech (barge-in's test)


class PauseDetector:
    def __init__(self, pause_ms: int, max_turn_s: float, threshold: float = 0.5, end_threshold: float = 0.35,
                 min_speech_ms: int = 160, pre_roll_ms: int = 200, speculate_ms: int | None = None) -> None:
        """A turn starts once `min_speech_ms` of frames in a row are at least `threshold`
        likely speech, and ends after `pause_ms` below `end_threshold` (hysteresis: the
        tails of words stay in). With `speculate_ms`, each quiet stretch in a turn that
        lasts that long gives a Pausing event."""
        self._probability = SpeechProbability()
        self._pause_frames = max(1, round(pause_ms / 1000 / FRAME_S))
        self._max_frames = max(1, round(max_turn_s / FRAME_S))
        self._min_frames = max(1, round(min_speech_ms / 1000 / FRAME_S))
        speculate = None if speculate_ms is None else min(self._pause_frames - 1, round(speculate_ms / 1000 / FRAME_S))
        self._speculate_frames = speculate if speculate and speculate > 0 else None  # 0 would fire on speech
        self._threshold, self._end_threshold = threshold, end_threshold
        # the run of speech that starts a turn, and `pre_roll_ms` before it (a soft first word, "What")
        self._pre_roll: deque[np.ndarray] = deque(maxlen=self._min_frames + round(pre_roll_ms / 1000 / FRAME_S))
        self._pending = np.zeros(0, np.float32)  # less than a frame, waiting for the rest
        self._frames_seen = 0
        self._speech_run = 0
        self._turn: list[np.ndarray] | None = None
        self._turn_started_at = 0.0
        self._quiet_run = 0
        self._clear_frames = 0  # frames of the turn that are clearly speech
        self.last_probability = 0.0

    @property
    def in_turn(self) -> bool:
        return self._turn is not None

    @property
    def samples_after_pausing(self) -> int | None:
        """How much longer a TurnEnded's audio is than the Pausing of the same quiet stretch:
        a guess on any other Pausing's audio missed something (speech the detector scored as
        quiet)."""
        return None if self._speculate_frames is None else (self._pause_frames - self._speculate_frames) * FRAME

    @property
    def speech_run_s(self) -> float:
        """Seconds of likely speech in a row so far, before a turn has started (0 in a turn)."""
        return self._speech_run * FRAME_S if self._turn is None else 0.0

    @property
    def clear_speech_s(self) -> float:
        """Seconds of the turn in progress that are clearly speech (at least CLEAR_SPEECH)."""
        return self._clear_frames * FRAME_S if self._turn is not None else 0.0

    def feed(self, audio: np.ndarray) -> list[TurnEvent]:
        """Microphone audio (16 kHz mono float, any length); the turn events it completes."""
        samples = np.concatenate([self._pending, np.asarray(audio, np.float32).reshape(-1)])
        whole = samples.size - samples.size % FRAME
        self._pending = samples[whole:]
        events: list[TurnEvent] = []
        for start in range(0, whole, FRAME):
            events += self._step(samples[start : start + FRAME])
        return events

    def _step(self, frame: np.ndarray) -> list[TurnEvent]:
        self.last_probability = p = self._probability(frame)
        at_s = self._frames_seen * FRAME_S
        self._frames_seen += 1
        if self._turn is None:
            self._pre_roll.append(frame)
            self._speech_run = self._speech_run + 1 if p >= self._threshold else 0
            if self._speech_run < self._min_frames:
                return []
            self._turn = list(self._pre_roll)
            self._pre_roll.clear()
            self._turn_started_at = at_s - (self._min_frames - 1) * FRAME_S
            self._quiet_run = 0
            self._clear_frames = int(p >= CLEAR_SPEECH)
            return [TurnStarted(self._turn_started_at)]
        self._turn.append(frame)
        self._quiet_run = self._quiet_run + 1 if p < self._end_threshold else 0
        self._clear_frames += int(p >= CLEAR_SPEECH)
        if self._quiet_run == self._speculate_frames:
            return [Pausing(np.concatenate(self._turn))]
        if self._quiet_run >= self._pause_frames:
            return [self._end(cut=False)]
        if len(self._turn) >= self._max_frames:
            return [self._end(cut=True)]
        return []

    def _end(self, cut: bool) -> TurnEnded:
        assert self._turn is not None
        ended = TurnEnded(np.concatenate(self._turn), self._turn_started_at, cut)
        self._turn, self._speech_run = None, 0
        return ended

    def reset(self) -> None:
        """Forget the turn in progress (the microphone was switched off)."""
        self._turn, self._speech_run, self._quiet_run, self._clear_frames = None, 0, 0, 0
        self._pending = np.zeros(0, np.float32)
        self._pre_roll.clear()
        self._probability.reset()
