"""Calibration: the threshold from held-out good scores and a target false-alarm rate."""

from __future__ import annotations

import numpy as np
import pytest

from edge.errors import GateFitError, GateSchemaError
from edge.gate.calibration import Calibration, calibrate, fold_indices


def test_gumbel_scores_meet_the_target_rate_on_fresh_samples() -> None:
    """Maxima-like good scores (Gumbel): a threshold from 100 held-out samples keeps the false-alarm rate on
    100 000 fresh ones near the 1 % target, where the empirical quantile of 100 samples cannot resolve it."""
    rng = np.random.default_rng(7)
    rates = []
    for _ in range(20):
        cal = calibrate(rng.gumbel(3.0, 0.4, 100), 0.01)
        rates.append(float((rng.gumbel(3.0, 0.4, 100_000) > cal.threshold).mean()))
    assert 0.002 < float(np.median(rates)) < 0.02
    assert max(rates) < 0.05


def test_figures_and_normalization() -> None:
    scores = np.linspace(1.0, 2.0, 50)
    cal = calibrate(scores, 0.05)
    assert cal.held_out == 50 and cal.target_false_alarm_rate == 0.05
    assert cal.threshold == max(cal.empirical_quantile, cal.gumbel_quantile)
    assert cal.held_out_min == 1.0 and cal.held_out_max == 2.0 and cal.held_out_median == pytest.approx(1.5)
    assert cal.held_out_false_alarms == int((scores > cal.threshold).sum())
    assert cal.normalize(cal.threshold) == pytest.approx(0.5)
    assert cal.normalize(1.0) == pytest.approx(0.0)
    assert cal.normalize(1e9) == 1.0 and cal.normalize(-1e9) == 0.0
    assert Calibration.from_dict(cal.to_dict(), "image") == cal


def test_small_held_out_sets_fall_back_to_their_maximum() -> None:
    cal = calibrate(np.array([1.0, 1.1, 1.2, 5.0]), 0.01)
    assert cal.threshold >= 5.0 and cal.held_out_false_alarms == 0


@pytest.mark.parametrize(
    ("scores", "rate", "message"),
    [
        ([1.0], 0.01, "at least 2 held-out"),
        ([1.0, np.nan], 0.01, "NaN or infinite"),
        ([1.0, 2.0], 0.0, "must be in"),
        ([1.0, 2.0], 0.7, "must be in"),
    ],
)
def test_bad_calibration_inputs(scores: list[float], rate: float, message: str) -> None:
    with pytest.raises(GateFitError, match=message):
        calibrate(np.array(scores), rate)


def test_malformed_recorded_calibration() -> None:
    good = calibrate(np.linspace(0, 1, 10), 0.1).to_dict()
    with pytest.raises(GateSchemaError, match="missing 1 required positional argument: 'span'"):
        Calibration.from_dict({k: v for k, v in good.items() if k != "span"}, "sound")
    with pytest.raises(GateSchemaError, match=r"sound\.calibration\.held_out: expected int, got 'many'"):
        Calibration.from_dict({**good, "held_out": "many"}, "sound")
    with pytest.raises(GateSchemaError, match="span positive"):
        Calibration.from_dict({**good, "span": 0.0}, "sound")


def test_folds_are_contiguous_and_cover_everything() -> None:
    folds = fold_indices(12, 5)
    assert [len(f) for f in folds] == [3, 3, 2, 2, 2]
    assert np.concatenate(folds).tolist() == list(range(12))
    assert len(fold_indices(3, 5)) == 3
