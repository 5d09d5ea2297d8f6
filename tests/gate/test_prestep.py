"""The registration + illumination pre-step against known poses and lighting."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge.dataset.parts import Lighting, Pose, render_part
from edge.errors import GateSchemaError
from edge.gate.prestep import Prestep, PrestepParams

SIZE = (256, 192)


def _frame(pose: Pose, light: Lighting, seed: int) -> np.ndarray:
    rgb, _ = render_part(640, 480, pose, light, None, np.random.default_rng(seed))
    return cv2.resize(rgb, SIZE, interpolation=cv2.INTER_AREA)


def _reference() -> np.ndarray:
    frames = [_frame(Pose(0, 0, 0), Lighting(1.0, 0.0, 0.0), s) for s in range(8)]
    return np.mean(frames, axis=0).astype(np.uint8)


@pytest.mark.parametrize(("dx", "dy", "angle"), [(6.0, -4.0, 2.5), (-8.0, 7.0, -3.0), (0.0, 0.0, 0.0)])
def test_registration_recovers_the_pose(dx: float, dy: float, angle: float) -> None:
    pre = Prestep(_reference(), PrestepParams())
    m = pre.register(_frame(Pose(dx, dy, angle), Lighting(1.15, 0.15, 40.0), 99))
    scale = SIZE[0] / 640
    centre = ((320 + 0.5) * scale - 0.5, (240 + 0.5) * scale - 0.5)  # the part's centre, pixel-centre convention
    truth = cv2.getRotationMatrix2D(centre, angle, 1.0)
    truth[:, 2] += (dx * scale, dy * scale)
    corners = np.array([[64, 48, 1], [192, 48, 1], [64, 144, 1], [192, 144, 1]], np.float64)
    err = np.abs(corners @ m.T - corners @ truth.T).max()
    assert err < 0.6  # working-size pixels, over the part's extent


def test_illumination_normalization_removes_gain_and_gradient() -> None:
    pre = Prestep(_reference(), PrestepParams(register=False))
    flat = pre.apply(_frame(Pose(0, 0, 0), Lighting(1.0, 0.0, 0.0), 3))[0]
    lit = pre.apply(_frame(Pose(0, 0, 0), Lighting(0.8, 0.2, 120.0), 3))[0]
    raw = _frame(Pose(0, 0, 0), Lighting(0.8, 0.2, 120.0), 3).astype(np.float32) / 255
    part = (slice(60, 130), slice(80, 180))
    assert np.abs(lit[part] - flat[part]).mean() < 0.25 * np.abs(raw[part] - flat[part]).mean()


def test_apply_returns_unit_range_float_and_the_affine() -> None:
    pre = Prestep(_reference(), PrestepParams())
    out, m = pre.apply(_frame(Pose(3, 3, 1), Lighting(1.0, 0.1, 0.0), 1))
    assert out.dtype == np.float32 and out.shape == (192, 256, 3) and out.min() >= 0 and out.max() <= 1
    assert m.shape == (2, 3)
    blank = pre.apply(np.zeros((192, 256, 3), np.uint8))[0]  # ECC cannot converge on nothing: no crash
    assert np.isfinite(blank).all()


def test_params_round_trip_and_refusals() -> None:
    p = PrestepParams(illumination_degree=1)
    assert PrestepParams.from_dict(p.to_dict()) == p
    with pytest.raises(GateSchemaError, match="unknown pre-step"):
        PrestepParams.from_dict({**p.to_dict(), "name": "sharpen"})
    with pytest.raises(GateSchemaError, match="unsupported"):
        PrestepParams.from_dict({**p.to_dict(), "motion": "homography"})
