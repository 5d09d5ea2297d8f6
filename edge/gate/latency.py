"""Gate latency on one core: scoring alone, JPEG decode beside it, and a 1080p frame end to end.

The process is pinned to one CPU and OpenCV to one thread for the measurement (the gate's onnxruntime
session already runs one thread), then both are restored. Figures are medians over repeated runs; the JPEG
decode of the same frame is measured in the same run, so ratios hold on a noisy machine.

>>> figures = measure_latency(gate.image, frames)
>>> figures.score_ms, figures.decode_ms, figures.hd_jpeg_to_score_ms
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from edge.dataset.parts import Lighting, Pose, render_part
from edge.gate.image_gate import ImageGate
from edge.gate.sound_gate import SoundGate
from edge.runtime.image import decode_image
from edge.samples import jpeg_bytes

HD = (1920, 1080)


@dataclass(frozen=True)
class LatencyReport:
    """Median milliseconds per frame (or per audio window) on one core; ``score_best_ms`` is the fastest run, what
    the machine does when nothing else competes for the core."""

    cpu: int | None
    frame_size: tuple[int, int]
    working_size: tuple[int, int]
    score_ms: float
    score_best_ms: float
    prestep_ms: float
    decode_ms: float
    jpeg_to_score_ms: float
    hd_decode_ms: float
    hd_score_ms: float
    hd_jpeg_to_score_ms: float
    hd_reduced_jpeg_to_score_ms: float
    sound_window_ms: float | None


@contextlib.contextmanager
def one_core() -> Iterator[int | None]:
    """Pin this process to one CPU and OpenCV to one thread; yields the CPU (None where pinning is unsupported)."""
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    previous = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    cpu = min(previous) if previous else None
    if previous and cpu is not None:
        os.sched_setaffinity(0, {cpu})
    try:
        yield cpu
    finally:
        if previous:
            os.sched_setaffinity(0, previous)
        cv2.setNumThreads(threads)


def measure_latency(
    gate: ImageGate, frames: list[np.ndarray], sound: SoundGate | None = None, repeats: int = 3
) -> LatencyReport:
    """Time ``gate`` on ``frames`` (RGB, the data set's size) and on a rendered 1080p frame, on one core."""
    jpegs = [jpeg_bytes(f) for f in frames]
    hd, _ = render_part(*HD, Pose(0.0, 0.0, 0.0), Lighting(1.0, 0.0, 0.0), None, np.random.default_rng(0))
    hd_jpeg = jpeg_bytes(hd)
    with one_core() as cpu:
        for f in frames[:2]:  # warm-up: first runs allocate
            gate.score(f)
        score_times = _times(lambda i: gate.score(frames[i]), len(frames), repeats)
        pre = gate.prestep
        small = [cv2.resize(f, gate.input_size[::-1], interpolation=cv2.INTER_AREA) for f in frames]
        prestep = _median(lambda i: pre.apply(small[i]), len(small), repeats) if pre is not None else 0.0
        decode = _median(lambda i: decode_image(jpegs[i]), len(jpegs), repeats)
        end_to_end = _median(lambda i: gate.score(decode_image(jpegs[i])), len(jpegs), repeats)
        hd_decode = _median(lambda i: decode_image(hd_jpeg), 5, repeats)
        hd_score = _median(lambda i: gate.score(hd), 5, repeats)
        hd_both = _median(lambda i: gate.score(decode_image(hd_jpeg)), 5, repeats)
        hd_reduced = _median(lambda i: gate.score_jpeg(hd_jpeg), 5, repeats)
        window_ms = None
        if sound is not None:
            wave = np.random.default_rng(0).normal(0, 0.1, sound.window_samples * 8).astype(np.float32)
            window_ms = _median(lambda i: sound.score(wave), 5, repeats) / 8
    h, w = gate.input_size
    return LatencyReport(
        cpu=cpu,
        frame_size=(frames[0].shape[1], frames[0].shape[0]),
        working_size=(w, h),
        score_ms=float(np.median(score_times)),
        score_best_ms=float(np.min(score_times)),
        prestep_ms=prestep,
        decode_ms=decode,
        jpeg_to_score_ms=end_to_end,
        hd_decode_ms=hd_decode,
        hd_score_ms=hd_score,
        hd_jpeg_to_score_ms=hd_both,
        hd_reduced_jpeg_to_score_ms=hd_reduced,
        sound_window_ms=window_ms,
    )


def _times(fn: Callable[[int], object], n: int, repeats: int) -> list[float]:
    """Milliseconds of ``fn(i)`` for each of ``n`` inputs, ``repeats`` rounds."""
    times = []
    for _ in range(repeats):
        for i in range(n):
            t = time.perf_counter()
            fn(i)
            times.append((time.perf_counter() - t) * 1e3)
    return times


def _median(fn: Callable[[int], object], n: int, repeats: int) -> float:
    return float(np.median(_times(fn, n, repeats)))


__all__ = ["LatencyReport", "measure_latency", "one_core"]
