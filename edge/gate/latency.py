"""Gate latency on one core: scoring alone, JPEG decode beside it, and a 1080p frame end to end.

The process is pinned to one CPU and OpenCV to one thread for the measurement (the gate's onnxruntime
session already runs one thread, in the caller's), then both are restored. Each figure is the median over
repeated runs of two clocks: the scoring thread's CPU time, which is what the work costs a core, and wall
time, which on a shared machine also holds the time other processes had the core. The JPEG decode of the
same frame is measured in the same run, so ratios hold on a noisy machine.

>>> report = measure_latency(gate.image, frames)
>>> report.score.cpu_ms, report.score.wall_ms, report.decode.cpu_ms
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from edge.dataset.parts import Lighting, Pose, render_part
from edge.gate.image_gate import ImageGate
from edge.gate.sound_gate import SoundGate
from edge.runtime.image import decode_image
from edge.samples import jpeg_bytes

HD = (1920, 1080)


@dataclass(frozen=True)
class Timing:
    """Median milliseconds of one operation: CPU time of the calling thread, and wall time."""

    cpu_ms: float
    wall_ms: float


@dataclass(frozen=True)
class LatencyReport:
    """Per frame (or per audio window) on one core."""

    cpu: int | None
    frame_size: tuple[int, int]
    working_size: tuple[int, int]
    score: Timing
    prestep: Timing
    decode: Timing
    jpeg_to_score: Timing
    hd_decode: Timing
    hd_score: Timing
    hd_jpeg_to_score: Timing
    hd_reduced_jpeg_to_score: Timing
    sound_window: Timing | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
    h, w = gate.input_size
    small = [cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames]
    pre = gate.prestep
    n = len(frames)
    with one_core() as cpu:
        for f in frames[:2]:  # warm-up: first runs allocate
            gate.score(f)
        window = None
        if sound is not None:
            wave = np.random.default_rng(0).normal(0, 0.1, sound.window_samples * 8).astype(np.float32)
            window = _per(8, _timing(lambda i: sound.score(wave), 5, repeats))
        return LatencyReport(
            cpu=cpu,
            frame_size=(frames[0].shape[1], frames[0].shape[0]),
            working_size=(w, h),
            score=_timing(lambda i: gate.score(frames[i]), n, repeats),
            prestep=_timing(lambda i: pre.apply(small[i]), n, repeats) if pre is not None else Timing(0.0, 0.0),
            decode=_timing(lambda i: decode_image(jpegs[i]), n, repeats),
            jpeg_to_score=_timing(lambda i: gate.score(decode_image(jpegs[i])), n, repeats),
            hd_decode=_timing(lambda i: decode_image(hd_jpeg), 5, repeats),
            hd_score=_timing(lambda i: gate.score(hd), 5, repeats),
            hd_jpeg_to_score=_timing(lambda i: gate.score(decode_image(hd_jpeg)), 5, repeats),
            hd_reduced_jpeg_to_score=_timing(lambda i: gate.score_jpeg(hd_jpeg), 5, repeats),
            sound_window=window,
        )


def _timing(fn: Callable[[int], object], n: int, repeats: int) -> Timing:
    """Median CPU and wall milliseconds of ``fn(i)`` over ``n`` inputs, ``repeats`` rounds."""
    cpu, wall = [], []
    for _ in range(repeats):
        for i in range(n):
            c, t = time.thread_time(), time.perf_counter()
            fn(i)
            wall.append(time.perf_counter() - t)
            cpu.append(time.thread_time() - c)
    return Timing(float(np.median(cpu)) * 1e3, float(np.median(wall)) * 1e3)


def _per(k: int, t: Timing) -> Timing:
    return Timing(t.cpu_ms / k, t.wall_ms / k)


__all__ = ["LatencyReport", "Timing", "measure_latency", "one_core"]
