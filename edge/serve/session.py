"""State of one Inspect session: recent frames, recent audio, and which frame a trigger describes.

Frames are checked cheaply on arrival (header and size limits) and kept encoded in a small buffer;
only a frame that gets described is decoded. When the buffer is full the oldest frame is dropped
as *superseded* (latest frame wins). Audio chunks are decoded to 16 kHz mono on arrival and kept
for ``audio_buffer_seconds``. Frame age for the staleness rule counts from when the daemon
received the frame: station clocks are not trusted to match the server's.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SAMPLE_RATE = 16_000


@dataclass
class BufferedFrame:
    sequence: int
    capture_time: float
    received: float  # time.monotonic() on arrival
    image: Any  # the Image message as received (checked, not decoded)


@dataclass
class AudioSpan:
    capture_time: float  # of the first sample, client clock
    samples: np.ndarray  # float32 mono 16 kHz

    @property
    def end(self) -> float:
        return self.capture_time + len(self.samples) / SAMPLE_RATE


@dataclass
class Session:
    """Thread-safe: the event loop adds frames and audio, the engine worker takes frames."""

    frame_buffer: int
    audio_buffer_seconds: float
    frames: deque[BufferedFrame] = field(default_factory=deque)
    audio: deque[AudioSpan] = field(default_factory=deque)
    sequence: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_sequence(self) -> int:
        with self.lock:
            self.sequence += 1
            return self.sequence

    def add_frame(self, frame: BufferedFrame) -> list[BufferedFrame]:
        """Buffer a frame; return the frames it pushed out (superseded)."""
        with self.lock:
            self.frames.append(frame)
            out = []
            while len(self.frames) > self.frame_buffer:
                out.append(self.frames.popleft())
            return out

    def take_nearest(self, when: float | None) -> BufferedFrame | None:
        """Remove and return the frame captured nearest ``when`` (the latest when None)."""
        with self.lock:
            if not self.frames:
                return None
            if when is None:
                return self.frames.pop()
            best = min(self.frames, key=lambda f: abs(f.capture_time - when))
            self.frames.remove(best)
            return best

    def take_all(self) -> list[BufferedFrame]:
        with self.lock:
            out = list(self.frames)
            self.frames.clear()
            return out

    def add_audio(self, span: AudioSpan) -> None:
        with self.lock:
            self.audio.append(span)
            while self.audio and span.end - self.audio[0].end > self.audio_buffer_seconds:
                self.audio.popleft()

    def audio_window(self, start: float, end: float) -> np.ndarray | None:
        """Samples captured in [start, end], stitched in capture order (gaps are not filled)."""
        with self.lock:
            parts = []
            for span in self.audio:
                lo, hi = max(start, span.capture_time), min(end, span.end)
                if hi <= lo:
                    continue
                a = round((lo - span.capture_time) * SAMPLE_RATE)
                b = round((hi - span.capture_time) * SAMPLE_RATE)
                parts.append(span.samples[a:b])
        parts = [p for p in parts if p.size]
        return np.concatenate(parts) if parts else None


def age(frame: BufferedFrame) -> float:
    return time.monotonic() - frame.received
