"""The six defect kinds. Assembly defects (missing feature, misprint, misalignment) change what the part
carries (a :class:`PartSpec`); surface defects (scratch, dent, contamination) are drawn on the clean part."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge.samples import PartGeometry

DEFECT_KINDS = ("scratch", "dent", "missing_feature", "contamination", "misprint", "misalignment")
MARKING = "EI-04"


@dataclass(frozen=True)
class PartSpec:
    """What one part carries: its holes, its printed marking (one offset per print pass) and its clip."""

    holes: tuple[bool, bool, bool] = (True, True, True)
    marking: str = MARKING
    marking_prints: tuple[tuple[int, int], ...] = ((0, 0),)
    clip: bool = True
    clip_shift: tuple[int, int] = (0, 0)
    clip_angle_deg: float = 0.0


def part_spec_for(kind: str, rng: np.random.Generator) -> PartSpec:
    """The part a defect of ``kind`` is drawn on: a good part for surface defects."""
    if kind == "missing_feature":
        which = int(rng.integers(4))  # one of the three holes, or the clip
        if which == 3:
            return PartSpec(clip=False)
        return PartSpec(holes=tuple(i != which for i in range(3)))  # type: ignore[arg-type]
    if kind == "misprint":
        how = int(rng.integers(3))
        i = int(rng.integers(len(MARKING)))
        if how == 0:  # a wrong character
            return PartSpec(marking=MARKING[:i] + ("8" if MARKING[i] != "8" else "3") + MARKING[i + 1 :])
        if how == 1:  # a character missing
            return PartSpec(marking=MARKING[:i] + " " + MARKING[i + 1 :])
        dx, dy = int(rng.integers(2, 6)) * int(rng.choice([-1, 1])), int(rng.integers(-3, 4))
        return PartSpec(marking_prints=((0, 0), (dx, dy)))  # a doubled print
    if kind == "misalignment":
        dx, dy = int(rng.integers(3, 9)) * int(rng.choice([-1, 1])), int(rng.integers(-3, 4))
        return PartSpec(clip_shift=(dx, dy), clip_angle_deg=float(rng.uniform(3, 10) * rng.choice([-1, 1])))
    return PartSpec()


def draw_surface_defect(img: np.ndarray, kind: str, g: PartGeometry, rng: np.random.Generator) -> None:
    """Draw a scratch, dent or contamination on ``img`` (RGB uint8, canonical pose); other kinds draw nothing."""
    if kind == "scratch":
        _scratch(img, g, rng)
    elif kind == "dent":
        _dent(img, g, rng)
    elif kind == "contamination":
        _contamination(img, g, rng)


def _flat_metal(g: PartGeometry, shape: tuple[int, ...], margin: float) -> np.ndarray:
    """Mask of the part's flat metal, at least ``margin`` × part width away from the outline and holes."""
    body = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(body, [g.body], 255)
    for hx, hy in g.holes:
        cv2.circle(body, (hx, hy), int(g.hole_radius * 1.8), 0, -1)
    k = max(3, int(g.w * margin) * 2 + 1)
    return cv2.erode(body, np.ones((k, k), np.uint8))


def _point(g: PartGeometry, shape: tuple[int, ...], rng: np.random.Generator, margin: float) -> tuple[int, int]:
    ys, xs = np.nonzero(_flat_metal(g, shape, margin))
    i = int(rng.integers(len(xs)))
    return int(xs[i]), int(ys[i])


def _scratch(img: np.ndarray, g: PartGeometry, rng: np.random.Generator) -> None:
    """A thin line of 2–4 segments, darker (or brighter) than the metal: a tool mark or a crack."""
    x, y = _point(g, img.shape, rng, 0.08)
    pts = [(x, y)]
    heading = rng.uniform(0, 2 * np.pi)
    for _ in range(int(rng.integers(2, 4))):
        heading += rng.uniform(-0.6, 0.6)
        step = rng.uniform(0.04, 0.1) * g.w
        x, y = x + step * np.cos(heading), y + step * np.sin(heading)
        pts.append((x, y))
    line = np.zeros(img.shape[:2], np.uint8)
    poly = np.round(np.array(pts)).astype(np.int32)
    cv2.polylines(line, [poly], False, 255, max(1, round(g.w / 300)), cv2.LINE_AA)
    body = np.zeros(img.shape[:2], np.uint8)
    cv2.fillPoly(body, [g.body], 255)
    tone = rng.uniform(0.72, 0.9) if rng.random() < 0.7 else rng.uniform(1.1, 1.25)  # 10–28 % off the metal
    a = (line.astype(np.float32) * (body > 0) / 255)[:, :, None]
    img[:] = np.clip(img * (1 - a) + img * tone * a, 0, 255).astype(np.uint8)


def _dent(img: np.ndarray, g: PartGeometry, rng: np.random.Generator) -> None:
    """A shallow dent: shaded darker on one side and lighter on the other, as raking light shows it."""
    x, y = _point(g, img.shape, rng, 0.08)
    r = rng.uniform(0.03, 0.05) * g.w
    yy, xx = np.mgrid[0 : img.shape[0], 0 : img.shape[1]].astype(np.float32)
    t = rng.uniform(0, 2 * np.pi)
    u = ((xx - x) * np.cos(t) + (yy - y) * np.sin(t)) / r
    bump = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * (r / 2) ** 2))
    shade = rng.uniform(35, 70) * u * bump - rng.uniform(5, 12) * bump  # ±10–20 grey levels at the flanks
    img[:] = np.clip(img.astype(np.float32) + shade[:, :, None], 0, 255).astype(np.uint8)


def _contamination(img: np.ndarray, g: PartGeometry, rng: np.random.Generator) -> None:
    """Oil, swarf or dust: one or two small irregular blobs of a foreign colour, partly transparent."""
    colour = np.array([(70, 55, 30), (40, 40, 40), (150, 120, 70)][int(rng.integers(3))], np.float32)
    layer = np.zeros(img.shape[:2], np.uint8)
    x, y = _point(g, img.shape, rng, 0.1)
    for _ in range(int(rng.integers(1, 3))):
        for _ in range(int(rng.integers(2, 6))):
            ox, oy = rng.normal(0, 0.01 * g.w, 2)
            r = max(1, int(rng.uniform(0.004, 0.012) * g.w))
            cv2.circle(layer, (int(x + ox), int(y + oy)), r, 255, -1, cv2.LINE_AA)
        x, y = int(x + rng.normal(0, 0.04 * g.w)), int(y + rng.normal(0, 0.04 * g.w))
    a = rng.uniform(0.3, 0.7) * layer.astype(np.float32)[:, :, None] / 255
    img[:] = np.clip(img * (1 - a) + colour * a, 0, 255).astype(np.uint8)


__all__ = ["DEFECT_KINDS", "MARKING", "PartSpec", "draw_surface_defect", "part_spec_for"]
