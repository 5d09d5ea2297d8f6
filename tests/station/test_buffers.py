"""Frame and audio buffers: latest frame wins; audio is bounded whatever the client's timestamps say."""

from __future__ import annotations

import numpy as np

from edge.station.buffers import AudioBuffer, AudioSpan, BufferedFrame, FrameBuffer


def test_audio_that_never_advances_in_time_stays_bounded() -> None:
    buf = AudioBuffer(seconds=30.0)
    chunk = np.zeros(30 * 16_000, np.float32)  # 30 s, 1.9 MB each
    for i in range(150):  # the same capture time every time: the old buffer kept all 150 (288 MB)
        buf.add(AudioSpan(1_700_000_000.0, chunk, received=float(i)))
    assert buf.nbytes <= 30 * 16_000 * 4 and len(buf) == 1


def test_audio_is_dropped_by_arrival_age_and_by_capture_span() -> None:
    buf = AudioBuffer(seconds=10.0)
    one = np.ones(16_000, np.float32)
    buf.add(AudioSpan(0.0, one, received=0.0))
    buf.add(AudioSpan(1.0, one, received=5.0))
    buf.add(AudioSpan(2.0, one, received=10.5))  # the first arrived 10.5 s ago
    assert len(buf) == 2
    buf.add(AudioSpan(100.0, one, received=10.6))  # 98 s later by the client's clock
    assert len(buf) == 1


def test_window_never_exceeds_its_length_even_with_overlapping_chunks() -> None:
    buf = AudioBuffer(seconds=30.0)
    for i in range(5):
        buf.add(AudioSpan(0.0, np.full(16_000, i, np.float32), received=float(i)))
    w = buf.window(0.25, 0.75)
    assert w is not None and len(w) == 8_000
    assert buf.window(5.0, 6.0) is None


def test_frame_buffer_keeps_the_latest_and_takes_the_nearest() -> None:
    buf = FrameBuffer(2)
    frames = [BufferedFrame(i, float(i), 0.0, None) for i in range(1, 4)]
    assert buf.add(frames[0]) == [] and buf.add(frames[1]) == []
    assert buf.add(frames[2]) == [frames[0]]
    assert buf.take_nearest(2.2) is frames[1] and buf.take_nearest(None) is frames[2]
    assert buf.take_nearest(None) is None
