"""The anomaly gate's worker: every frame and every audio window scored on a thread of its own.

The gate never waits behind the language model: it has its own thread (and its own single-threaded
onnxruntime session), so frames are scored at camera rate while a description runs. Encoded JPEGs are
scored from a reduced-scale decode (libjpeg's DCT scaling), which costs a fraction of a full decode; the
full frame is decoded only if it is described. Sound is scored in complete windows as chunks arrive
(:class:`SoundStream` carries the remainder from one chunk to the next).

>>> runner = GateRunner(load_gate(Path("gate")), metrics)
>>> result = await runner.image(pending_image, threshold=None)      # GateResult, on the gate's thread
>>> windows = await runner.sound(stream, samples, capture_time)     # [(start, end, GateResult)]
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from edge.errors import FieldError, ImageError

SAMPLE_RATE = 16_000
CONTIGUOUS = 0.05  # seconds: audio chunks this close to the previous one's end continue its window


class SoundStream:
    """One session's sound-gate state: samples after the last complete window, and their capture time."""

    def __init__(self) -> None:
        self.rest = np.zeros(0, np.float32)
        self.start = 0.0

    def extend(self, samples: np.ndarray, capture_time: float) -> tuple[np.ndarray, float]:
        """The samples to score (the rest of the last chunk, if contiguous, then this one) and their start."""
        if self.rest.size and abs(self.start + self.rest.size / SAMPLE_RATE - capture_time) <= CONTIGUOUS:
            return np.concatenate([self.rest, samples]), self.start
        return samples, capture_time

    def keep(self, samples: np.ndarray, start: float, scored: int) -> None:
        self.rest = samples[scored:].copy()
        self.start = start + scored / SAMPLE_RATE


class GateRunner:
    """A loaded gate (``edge.gate.Gate``) on its own thread, with its metrics."""

    def __init__(self, gate: Any, metrics: Any | None = None, threshold: float | None = None) -> None:
        self.gate, self.metrics, self.threshold = gate, metrics, threshold
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edge-gate")

    @property
    def gate_id(self) -> str:
        return str(self.gate.gate_id)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    async def image(self, image: Any, threshold: float | None = None) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, self.score_image, image, threshold)

    async def sound(
        self, stream: SoundStream, samples: np.ndarray, capture_time: float
    ) -> list[tuple[float, float, Any]]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, self.score_sound, stream, samples, capture_time)

    # -- on the gate's thread -------------------------------------------------------------------------
    def score_image(self, image: Any, threshold: float | None = None) -> Any:
        """Decode (reduced scale for JPEG) and score one frame; errors name the frame's field."""
        t = self.threshold if threshold is None else threshold
        started = time.perf_counter()
        try:
            if getattr(image, "kind", "") == "JPEG":
                result = self.gate.image.score_jpeg(image.data, t, image.limits)
            else:
                pixels = image if isinstance(image, np.ndarray) else image.decode()
                result = self.gate.image.score(pixels, t)
        except ImageError as exc:
            raise FieldError(getattr(image, "field", "image"), str(exc)) from None
        if self.metrics is not None:
            self.metrics.observe_gate("image", result.score, result.label, time.perf_counter() - started)
        return result

    def score_sound(
        self, stream: SoundStream, samples: np.ndarray, capture_time: float
    ) -> list[tuple[float, float, Any]]:
        wave, start = stream.extend(samples, capture_time)
        started = time.perf_counter()
        windows = self.gate.sound.score(wave, self.threshold)
        stream.keep(wave, start, len(windows) * self.gate.sound.window_samples)
        if self.metrics is not None and windows:
            each = (time.perf_counter() - started) / len(windows)
            for w in windows:
                self.metrics.observe_gate("sound", w.result.score, w.result.label, each)
        return [(start + w.start_s, start + w.end_s, w.result) for w in windows]
