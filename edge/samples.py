"""Synthetic station inputs for the demo and tests: a rendered part with a defect, and machine audio."""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class PartGeometry:
    """Where the bracket sits in a frame: its outline polygon and its three mounting holes."""

    cx: int
    cy: int
    w: int
    h: int
    body: np.ndarray  # int32 [5, 2] polygon (x, y)
    holes: tuple[tuple[int, int], ...]
    hole_radius: int


def part_geometry(width: int, height: int) -> PartGeometry:
    """The bracket's outline and holes for a ``width`` × ``height`` frame, centred, in canonical pose."""
    cx, cy, w, h = width // 2, height // 2, int(width * 0.45), int(height * 0.5)
    body = np.array(
        [
            [cx - w // 2, cy - h // 2],
            [cx + w // 2, cy - h // 2],
            [cx + w // 2, cy + h // 4],
            [cx + w // 6, cy + h // 2],
            [cx - w // 2, cy + h // 2],
        ],
        np.int32,
    )
    r = max(6, h // 14)
    holes = (
        (cx - w // 2 + 2 * r, cy - h // 2 + 2 * r),
        (cx - w // 2 + 2 * r, cy + h // 2 - 2 * r),
        (cx + w // 2 - 2 * r, cy - h // 2 + 2 * r),
    )
    return PartGeometry(cx, cy, w, h, body, holes, r)


def belt_image(width: int, height: int, rng: np.random.Generator, phase: float = 0.0) -> np.ndarray:
    """An RGB ``uint8`` conveyor belt: faint vertical ribs (shifted by ``phase`` radians) and sensor noise."""
    x = np.mgrid[0:height, 0:width][1].astype(np.float32)
    belt = 60 + 10 * np.sin(x / 9.0 + phase) + rng.normal(0, 3, (height, width))
    return np.repeat(np.clip(belt, 0, 255)[:, :, None], 3, axis=2).astype(np.uint8)


def draw_part(img: np.ndarray, geom: PartGeometry, rng: np.random.Generator, texture: float = 4.0) -> None:
    """Draw the bracket in place: brushed metal with ``texture`` grey levels of noise, holes, outline."""
    height, width = img.shape[:2]
    x = np.mgrid[0:height, 0:width][1].astype(np.float32)
    mask = np.zeros((height, width), np.uint8)
    cv2.fillPoly(mask, [geom.body], 255)
    metal = 150 + 60 * (x - (geom.cx - geom.w / 2)) / geom.w + rng.normal(0, texture, (height, width))
    for c, tint in enumerate((1.0, 1.02, 1.05)):
        img[:, :, c] = np.where(mask > 0, np.clip(metal * tint, 0, 255), img[:, :, c])
    for hx, hy in geom.holes:
        cv2.circle(img, (hx, hy), geom.hole_radius, (35, 35, 40), -1, cv2.LINE_AA)  # mounting holes
    cv2.polylines(img, [geom.body], True, (90, 90, 95), 3, cv2.LINE_AA)


def part_image(width: int = 1280, height: int = 720, defect: bool = True, seed: int = 0) -> np.ndarray:
    """An RGB ``uint8`` frame: a machined bracket on a conveyor, with a dark scratch and a dent if ``defect``."""
    rng = np.random.default_rng(seed)
    img = belt_image(width, height, rng)
    g = part_geometry(width, height)
    draw_part(img, g, rng)
    cx, cy, w, h = g.cx, g.cy, g.w, g.h
    if defect:
        pts = np.array(
            [[cx - w // 5, cy + h // 5], [cx - w // 16, cy - h // 20], [cx + w // 10, cy - h // 5]], np.int32
        )
        cv2.polylines(img, [pts], False, (25, 20, 20), max(2, width // 400), cv2.LINE_AA)  # scratch
        cv2.ellipse(img, (cx + w // 4, cy + h // 6), (w // 18, h // 22), 20, 0, 360, (95, 90, 85), -1, cv2.LINE_AA)
    return img


def machine_audio(seconds: float = 2.0, rate: int = 16_000, click_at: float | None = 1.2, seed: int = 0) -> np.ndarray:
    """Float32 mono: a 50 Hz motor hum with harmonics and bearing noise, and one sharp click."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    hum = sum(a * np.sin(2 * np.pi * f * t) for f, a in ((50, 0.30), (100, 0.15), (150, 0.08), (300, 0.03)))
    wave_ = hum + 0.02 * rng.standard_normal(t.size)
    if click_at is not None and 0 <= click_at < seconds:
        i = int(click_at * rate)
        n = min(240, t.size - i)
        wave_[i : i + n] += 0.9 * np.exp(-np.arange(n) / 30.0) * np.sign(rng.standard_normal(n))
    return np.clip(wave_, -1, 1).astype(np.float32)


def wav_bytes(samples: np.ndarray, rate: int = 16_000) -> bytes:
    """16-bit PCM mono WAV."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return buf.getvalue()


def jpeg_bytes(rgb: np.ndarray, quality: int = 90) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - OpenCV always encodes a valid uint8 image
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()
