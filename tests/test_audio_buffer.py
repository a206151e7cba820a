"""The FIFO of speech samples between a provider and the media clock."""

import threading
import time

import numpy as np

from avatar_core.media.audio_buffer import AudioBuffer


def ramp(start: int, n: int) -> np.ndarray:
    return np.arange(start, start + n, dtype=np.float32)


def test_pull_returns_exactly_n_samples_in_order_across_pushes():
    buf = AudioBuffer()
    buf.push(ramp(0, 5))
    buf.push(ramp(5, 3))
    out, speech = buf.pull(6)
    assert speech and out.dtype == np.float32 and out.tolist() == list(range(6))
    assert buf.pending_samples == 2
    out, speech = buf.pull(4)  # 2 left, then zeros
    assert speech and out.tolist() == [6, 7, 0, 0]
    out, speech = buf.pull(3)
    assert not speech and out.tolist() == [0, 0, 0]


def test_empty_pushes_are_ignored_and_clear_drops_everything():
    buf = AudioBuffer()
    buf.push(np.zeros(0, np.float32))
    assert buf.pending_samples == 0
    buf.push(ramp(1, 10))
    buf.pull(4)
    buf.clear()
    assert buf.pending_samples == 0 and buf.pull(2)[1] is False
    buf.push(ramp(100, 2))  # after a clear, reading starts at the new audio
    assert buf.pull(2)[0].tolist() == [100, 101]


def test_trim_keeps_the_newest_samples():
    buf = AudioBuffer()
    buf.push(ramp(0, 4))
    buf.push(ramp(4, 4))
    buf.push(ramp(8, 4))
    buf.pull(1)
    buf.trim_to(5)
    assert buf.pending_samples == 5
    assert buf.pull(5)[0].tolist() == [7, 8, 9, 10, 11]
    buf.trim_to(5)  # nothing to trim
    assert buf.pending_samples == 0


def test_a_reader_and_a_writer_on_two_threads_lose_nothing():
    buf, total, got = AudioBuffer(), 48_000, []

    def write() -> None:
        for start in range(0, total, 480):
            buf.push(ramp(start, 480))

    writer = threading.Thread(target=write)
    writer.start()
    taken, deadline = 0, time.monotonic() + 30
    while taken < total and time.monotonic() < deadline:
        if buf.pending_samples >= 960:  # whole chunks only: a short pull is padded with silence
            got.append(buf.pull(960)[0])
            taken += 960
    writer.join()
    assert np.concatenate(got).tolist() == list(range(total))
