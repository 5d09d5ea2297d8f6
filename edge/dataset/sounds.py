"""Machine sounds for the generated data set: a motor hum that varies from clip to clip, and four anomalies
laid over part of a clip (bearing knock, rattle, whine, drop-out), each with its time interval.

>>> wave, intervals = machine_clip(3.0, "knock", rng)   # float32 16 kHz mono, [(start_s, end_s)]
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16_000
SOUND_KINDS = ("knock", "rattle", "whine", "dropout")


def hum(seconds: float, rng: np.random.Generator, rate: int = SAMPLE_RATE) -> np.ndarray:
    """A running motor: mains-locked hum whose speed, harmonics, load and noise floor vary per clip."""
    n = int(seconds * rate)
    t = np.arange(n) / rate
    f0 = rng.uniform(47.5, 52.5) * (1 + 0.004 * np.sin(2 * np.pi * rng.uniform(0.1, 0.5) * t))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    out = np.zeros(n)
    for k, base in ((1, 0.30), (2, 0.15), (3, 0.08), (4, 0.05), (6, 0.03), (8, 0.02)):
        out += base * rng.uniform(0.7, 1.3) * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    out *= 1 + 0.05 * np.sin(2 * np.pi * rng.uniform(0.5, 2.0) * t)  # load ripple
    noise = rng.standard_normal(n)
    smooth = np.convolve(noise, np.ones(8) / 8, mode="same")  # fan and airflow: mostly below 2 kHz
    out += rng.uniform(0.015, 0.03) * smooth * 2 + rng.uniform(0.004, 0.008) * noise
    if rng.random() < 0.3:  # a pneumatic valve vents somewhere on the line: normal, and not rare
        k = int(rng.uniform(0.15, 0.4) * rate)
        i = int(rng.integers(0, max(1, n - k)))
        hiss = np.diff(rng.standard_normal(k + 1)) * np.hanning(k)  # differenced noise: mostly above 2 kHz
        out[i : i + k] += rng.uniform(0.005, 0.02) * hiss
    return out * rng.uniform(0.8, 1.2)


def _knock(n: int, rng: np.random.Generator, rate: int) -> np.ndarray:
    """A damaged bearing: a ringing impulse once per revolution of the outer race (8–14 per second)."""
    out = np.zeros(n)
    period = int(rate / rng.uniform(8, 14))
    ring_f, amp = rng.uniform(2500, 4500), rng.uniform(0.03, 0.15)
    m = min(n, int(0.012 * rate))
    ring = np.sin(2 * np.pi * ring_f * np.arange(m) / rate) * np.exp(-np.arange(m) / (0.002 * rate))
    for i in range(int(rng.integers(0, period)), n - m, period):
        out[i : i + m] += amp * rng.uniform(0.7, 1.0) * ring
    return out


def _rattle(n: int, rng: np.random.Generator, rate: int) -> np.ndarray:
    """A loose part: irregular broadband clicks, 20–40 per second."""
    out = np.zeros(n)
    m = int(0.004 * rate)
    shape = np.exp(-np.arange(m) / (0.0008 * rate))
    t = 0.0
    while (i := int(t * rate)) < n - m:
        out[i : i + m] += rng.uniform(0.02, 0.1) * shape * rng.standard_normal(m)
        t += rng.exponential(1 / rng.uniform(20, 40))
    return out


def _whine(n: int, rng: np.random.Generator, rate: int) -> np.ndarray:
    """A dry gear or bearing: a tone of 1–3 kHz with a slow wobble, fading in and out."""
    t = np.arange(n) / rate
    f = rng.uniform(1000, 3000) * (1 + 0.01 * np.sin(2 * np.pi * 3 * t))
    env = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.05)
    return rng.uniform(0.004, 0.02) * env * np.sin(2 * np.pi * np.cumsum(f) / rate)


def machine_clip(
    seconds: float, kind: str | None, rng: np.random.Generator, rate: int = SAMPLE_RATE
) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """One clip (float32 mono in [-1, 1]) and where its anomaly is, as ``[(start_s, end_s)]`` (empty if normal)."""
    if kind is not None and kind not in SOUND_KINDS:
        raise ValueError(f"unknown sound anomaly {kind!r}; use one of {', '.join(SOUND_KINDS)}")
    wave = hum(seconds, rng, rate)
    if kind is None:
        return np.clip(wave, -1, 1).astype(np.float32), []
    length = rng.uniform(0.8, min(1.6, seconds / 2))
    start = rng.uniform(0, seconds - length)
    a, b = int(start * rate), int((start + length) * rate)
    if kind == "dropout":  # the microphone or the motor cuts out: the level falls to 2–25 % of normal
        fade = np.ones(b - a)
        ramp = min(160, (b - a) // 4)
        fade[:ramp] = np.linspace(0, 1, ramp)
        fade[-ramp:] = np.linspace(1, 0, ramp)
        wave[a:b] *= 1 - fade * (1 - rng.uniform(0.02, 0.25))
    else:
        make = {"knock": _knock, "rattle": _rattle, "whine": _whine}[kind]
        wave[a:b] += make(b - a, rng, rate)
    return np.clip(wave, -1, 1).astype(np.float32), [(a / rate, b / rate)]


__all__ = ["SAMPLE_RATE", "SOUND_KINDS", "hum", "machine_clip"]
