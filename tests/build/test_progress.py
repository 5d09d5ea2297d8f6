"""Build-step progress off a terminal: quick steps stay quiet, long ones report count, status and time left."""

from __future__ import annotations

import logging
import threading

import pytest

from edge.build.progress import Progress


def test_quick_step_prints_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="edge.build")
    with Progress("quick", total=3, quiet_s=60) as bar:
        bar.update(3)
    assert caplog.records == []


def test_long_step_reports_without_updates(caplog: pytest.LogCaptureFixture) -> None:
    """The timer reports even while one update takes long (a parity case, a big tensor): never a silent minute."""
    caplog.set_level(logging.INFO, logger="edge.build")
    spoke = threading.Event()
    handler = logging.Handler()
    handler.emit = lambda record: "1/4 steps" in record.getMessage() and spoke.set()  # type: ignore[method-assign]
    logging.getLogger("edge.build").addHandler(handler)
    try:
        with Progress("train", total=4, quiet_s=0.01, every_s=0.01) as bar:
            bar.update(1, loss=2.5)
            assert spoke.wait(60), "no progress line while the step ran"
            bar.update(3, loss=1.25)
    finally:
        logging.getLogger("edge.build").removeHandler(handler)
    lines = [r.getMessage() for r in caplog.records]
    line = next(x for x in lines if "1/4" in x)
    assert line.startswith("train: 1/4 steps, loss 2.5, ") and line.endswith(" left")
    assert lines[-1].startswith("train: done in ") and lines[-1].endswith(", loss 1.25")
