"""Render the bracket of ``edge.samples`` as a line camera sees it: pose jitter, lighting drift, a printed marking
and a clip, with or without one defect, and the defect's pixel mask.

The part is drawn in canonical pose with its defect; the pixel mask is where that clean render differs from
the clean good render. Then the part (texture, defect and mask together) is rotated and shifted over the
belt, lit with a gain and a linear light gradient, and sensor noise is added.

>>> rgb, mask = render_part(640, 480, Pose(3.0, -2.0, 1.5), Lighting(1.1, 0.1, 30.0), "scratch", rng)
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge.dataset.defects import DEFECT_KINDS, PartSpec, draw_surface_defect, part_spec_for
from edge.samples import PartGeometry, belt_image, draw_part, part_geometry

_INK = (30, 40, 70)
EXPOSURE = 0.8  # the brightest metal (~220) stays below 255 at the brightest gain and light gradient
_CLIP = (70, 82, 112)


@dataclass(frozen=True)
class Pose:
    """Where the part lies relative to the canonical pose: a shift in pixels and a rotation in degrees."""

    dx: float
    dy: float
    angle_deg: float


@dataclass(frozen=True)
class Lighting:
    """Gain over the frame, and a light gradient of ``slope`` (relative change per half frame) at ``direction_deg``."""

    gain: float
    slope: float
    direction_deg: float


def draw_canonical(width: int, height: int, spec: PartSpec) -> tuple[np.ndarray, np.ndarray]:
    """The clean part (no texture noise) in canonical pose on a black canvas, and its alpha (uint8 0/255)."""
    g = part_geometry(width, height)
    img = np.zeros((height, width, 3), np.uint8)
    draw_part(img, g, np.random.default_rng(0), texture=0.0)
    for (hx, hy), present in zip(g.holes, spec.holes, strict=True):
        if not present:  # the hole was never drilled: bare metal where it belongs
            patch = np.zeros((height, width), np.uint8)
            cv2.circle(patch, (hx, hy), g.hole_radius + 2, 255, -1)
            img[patch > 0] = bare_metal(img.shape, g)[patch > 0]
    scale = g.w / 420
    origin = (g.cx - int(g.w * 0.32), g.cy + int(g.h * 0.12))
    for dx, dy in spec.marking_prints:
        cv2.putText(
            img, spec.marking, (origin[0] + dx, origin[1] + dy), cv2.FONT_HERSHEY_SIMPLEX, scale, _INK,
            max(1, round(2 * scale)), cv2.LINE_AA,
        )  # fmt: skip
    if spec.clip:
        cx, cy = g.cx + int(g.w * 0.22) + spec.clip_shift[0], g.cy - int(g.h * 0.12) + spec.clip_shift[1]
        w, h = max(8, int(g.w * 0.14)), max(6, int(g.h * 0.2))
        box = cv2.boxPoints(((cx, cy), (w, h), spec.clip_angle_deg))
        cv2.fillPoly(img, [np.round(box).astype(np.int32)], _CLIP, cv2.LINE_AA)
        cv2.circle(img, (round(cx), round(cy)), max(2, h // 5), (200, 200, 205), -1, cv2.LINE_AA)  # rivet
    alpha = np.zeros((height, width), np.uint8)
    cv2.fillPoly(alpha, [g.body], 255)
    cv2.polylines(alpha, [g.body], True, 255, 3, cv2.LINE_AA)
    return img, alpha


def bare_metal(shape: tuple[int, ...], g: PartGeometry) -> np.ndarray:
    """The bracket's brushed-metal gradient without features, as RGB uint8 of ``shape``."""
    xx = np.mgrid[0 : shape[0], 0 : shape[1]][1].astype(np.float32)
    metal = 150 + 60 * (xx - (g.cx - g.w / 2)) / g.w
    return np.clip(np.stack([metal * t for t in (1.0, 1.02, 1.05)], axis=2), 0, 255).astype(np.uint8)


def render_part(
    width: int,
    height: int,
    pose: Pose,
    lighting: Lighting,
    defect: str | None,
    rng: np.random.Generator,
    noise: float = 2.0,
) -> tuple[np.ndarray, np.ndarray]:
    """One frame (RGB uint8) and its defect mask (uint8 0/255, all zero for a good part)."""
    if defect is not None and defect not in DEFECT_KINDS:
        raise ValueError(f"unknown defect kind {defect!r}; use one of {', '.join(DEFECT_KINDS)}")
    g = part_geometry(width, height)
    good, alpha = draw_canonical(width, height, PartSpec())
    part = good
    if defect is not None:
        part, _ = draw_canonical(width, height, part_spec_for(defect, rng))
        draw_surface_defect(part, defect, g, rng)
    diff = np.abs(part.astype(np.int16) - good.astype(np.int16)).max(axis=2)
    mask = cv2.morphologyEx((diff > 8).astype(np.uint8) * 255, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    textured = part.astype(np.float32) + rng.normal(0, 4.0, (height, width, 1)).astype(np.float32)
    m = cv2.getRotationMatrix2D((g.cx, g.cy), pose.angle_deg, 1.0)
    m[:, 2] += np.array([pose.dx, pose.dy])
    size = (width, height)
    warped = cv2.warpAffine(textured, m, size, flags=cv2.INTER_LINEAR)
    a = cv2.warpAffine(alpha, m, size, flags=cv2.INTER_LINEAR).astype(np.float32)[:, :, None] / 255.0
    mask = (cv2.warpAffine(mask, m, size, flags=cv2.INTER_LINEAR) > 127).astype(np.uint8) * 255
    belt = belt_image(width, height, rng, phase=float(rng.uniform(0, 2 * np.pi))).astype(np.float32)  # belt moves
    scene: np.ndarray = a * warped + (1.0 - a) * belt
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    t = np.deg2rad(lighting.direction_deg)
    ramp = ((xx - width / 2) * np.cos(t) + (yy - height / 2) * np.sin(t)) / (max(width, height) / 2)
    scene *= (EXPOSURE * lighting.gain * (1.0 + lighting.slope * ramp))[:, :, None]
    scene += rng.normal(0, noise, scene.shape).astype(np.float32)
    return np.clip(np.round(scene), 0, 255).astype(np.uint8), mask


__all__ = ["Lighting", "Pose", "bare_metal", "draw_canonical", "render_part"]
