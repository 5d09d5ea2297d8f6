"""GateResult helpers: the threshold check, the anomalous region, its mapping to frame pixels, the crop."""

from __future__ import annotations

import numpy as np
import pytest

from edge.errors import GateScoreError, ImageError, ThresholdError
from edge.gate.result import anomalous_region, box_to_frame, check_score, check_threshold, crop_region


def test_check_threshold() -> None:
    assert check_threshold(None) == 0.5
    assert check_threshold(0.7) == 0.7
    for bad in (0, 1, -1, 2, float("nan"), float("-inf")):
        with pytest.raises(ThresholdError, match="strictly between 0 and 1"):
            check_threshold(bad)


def test_check_score() -> None:
    assert check_score(0.3, "g", "a frame") == 0.3
    with pytest.raises(GateScoreError, match="gate g returned a non-finite score"):
        check_score(float("nan"), "g", "a frame")


def test_region_is_the_component_holding_the_peak() -> None:
    m = np.zeros((40, 60), np.float32)
    m[5:8, 5:9] = 0.7  # a second, weaker region
    m[20:30, 40:50] = 0.6
    m[25, 45] = 0.95
    assert anomalous_region(m, 0.5, True) == (40, 20, 50, 30)
    assert anomalous_region(m, 0.99, False) is None
    # nothing above the threshold, but the graph's image score said anomalous (anomalib's pixel threshold
    # differs from its image threshold): the region is where the map exceeds half its peak
    faint = m * 0.5
    assert anomalous_region(faint, 0.5, True) == (40, 20, 50, 30)
    assert anomalous_region(faint, 0.5, False) is None


def test_box_to_frame_scales_and_clips() -> None:
    scale = 2.5  # a 256-px map on a 640-px frame, pixel-centre convention
    affine = (scale, 0.0, (scale - 1) / 2, 0.0, scale, (scale - 1) / 2)
    assert box_to_frame((10, 20, 30, 40), affine, (640, 480)) == (25, 50, 75, 100)
    assert box_to_frame((250, 190, 256, 192), affine, (640, 480)) == (625, 475, 640, 480)


def test_crop_region() -> None:
    frame = np.arange(480 * 640 * 3, dtype=np.uint32).reshape(480, 640, 3).astype(np.uint8)
    crop = crop_region(frame, (300, 200, 340, 220))  # 40x20 box, margin 0.5 × 40 each side
    assert crop.shape == (96, 96, 3)  # grown to at least 96 px
    big = crop_region(frame, (100, 100, 300, 200), margin=0.25)
    assert big.shape == (200, 300, 3)
    corner = crop_region(frame, (0, 0, 10, 10))
    assert corner.shape == (96, 96, 3) and np.array_equal(corner, frame[:96, :96])
    small = crop_region(np.zeros((50, 40, 3), np.uint8), (10, 10, 20, 20))
    assert small.shape == (50, 40, 3)  # never larger than the frame
    with pytest.raises(ImageError, match="not a non-empty box"):
        crop_region(frame, (10, 10, 10, 20))
    with pytest.raises(ImageError, match="not a non-empty box"):
        crop_region(frame, (600, 10, 700, 20))
