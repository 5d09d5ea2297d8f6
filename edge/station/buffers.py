"""A session's recent frames (latest wins) and recent audio (bounded by bytes and by arrival time).

Not thread-safe: the session core that owns them is driven under one lock. Times come from the caller:
``capture_time`` is the client's clock (used to pick the frame nearest a trigger and the audio around it),
``received`` is the daemon's clock (used for staleness and pruning: station clocks are not trusted to
match the server's, nor to advance).
"""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class BufferedFrame:
    sequence: int
    capture_time: float  # client clock
    received: float  # daemon clock, on arrival
    image: Any  # a PendingImage: checked, not decoded
    gate: Any = None  # the gate's result for this frame, when a gate scored it


class FrameBuffer:
    """At most ``capacity`` frames; adding one more pushes the oldest out (it is *superseded*)."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"frame buffer capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._frames: deque[BufferedFrame] = deque()

    def __len__(self) -> int:
        return len(self._frames)

    def add(self, frame: BufferedFrame) -> list[BufferedFrame]:
        """Buffer ``frame``; return the frames it pushed out."""
        self._frames.append(frame)
        out = []
        while len(self._frames) > self.capacity:
            out.append(self._frames.popleft())
        return out

    def nearest(self, when: float | None) -> BufferedFrame | None:
        """The frame captured nearest ``when`` (the latest when None), left in place."""
        if not self._frames:
            return None
        if when is None:
            return self._frames[-1]
        return min(self._frames, key=lambda f: abs(f.capture_time - when))

    def take_nearest(self, when: float | None) -> BufferedFrame | None:
        """Remove and return the frame captured nearest ``when`` (the latest when None)."""
        best = self.nearest(when)
        if best is not None:
            self._frames.remove(best)
        return best

    def take_all(self) -> list[BufferedFrame]:
        out = list(self._frames)
        self._frames.clear()
        return out

    def take(self, sequence: int) -> BufferedFrame | None:
        """Remove and return frame ``sequence`` if it is still buffered."""
        for f in self._frames:
            if f.sequence == sequence:
                self._frames.remove(f)
                return f
        return None

    def peek(self) -> list[BufferedFrame]:
        """The buffered frames, oldest first, left in place."""
        return list(self._frames)

    def update(self, sequence: int, **changes: Any) -> None:
        """Replace fields of frame ``sequence`` if it is still buffered (e.g. the gate's result)."""
        for i, f in enumerate(self._frames):
            if f.sequence == sequence:
                self._frames[i] = dataclasses.replace(f, **changes)
                return


@dataclass(frozen=True)
class AudioSpan:
    capture_time: float  # of the first sample, client clock
    samples: np.ndarray  # float32 mono 16 kHz
    received: float  # daemon clock

    @property
    def end(self) -> float:
        return self.capture_time + len(self.samples) / SAMPLE_RATE


class AudioBuffer:
    """Recent audio, at most ``seconds`` of samples in all and nothing received more than ``seconds`` ago.

    Both bounds hold whatever the client's timestamps say: a client whose capture times never advance
    cannot grow the buffer (each chunk pushes the oldest out).
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.max_samples = int(seconds * SAMPLE_RATE)
        self._spans: deque[AudioSpan] = deque()
        self._samples = 0

    @property
    def nbytes(self) -> int:
        return sum(s.samples.nbytes for s in self._spans)

    def __len__(self) -> int:
        return len(self._spans)

    def add(self, span: AudioSpan) -> None:
        if len(span.samples) > self.max_samples:  # keep the newest part of an oversized chunk
            cut = len(span.samples) - self.max_samples
            span = AudioSpan(span.capture_time + cut / SAMPLE_RATE, span.samples[cut:].copy(), span.received)
        self._spans.append(span)
        self._samples += len(span.samples)
        self.prune(span.received)

    def prune(self, now: float) -> None:
        """Drop the oldest spans while over the sample bound, received too long ago, or too far in the past."""
        newest_end = max(s.end for s in self._spans) if self._spans else 0.0
        while self._spans and (
            self._samples > self.max_samples
            or now - self._spans[0].received > self.seconds
            or newest_end - self._spans[0].end > self.seconds
        ):
            self._samples -= len(self._spans.popleft().samples)

    def window(self, start: float, end: float) -> np.ndarray | None:
        """Samples captured in [start, end], stitched in arrival order (gaps are not filled).

        Never longer than the window, even when a client's chunks overlap in time.
        """
        parts = []
        for span in self._spans:
            lo, hi = max(start, span.capture_time), min(end, span.end)
            if hi <= lo:
                continue
            a = round((lo - span.capture_time) * SAMPLE_RATE)
            b = round((hi - span.capture_time) * SAMPLE_RATE)
            if b > a:
                parts.append(span.samples[a:b])
        if not parts:
            return None
        return np.concatenate(parts)[: max(1, round((end - start) * SAMPLE_RATE))]
