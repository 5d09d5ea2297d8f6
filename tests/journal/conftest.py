"""Fixtures of the journal tests: a real Debian mosquitto per test, on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.bench.mosquitto import Mosquitto
from tests.journal.broker import Broker


@pytest.fixture()
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    b = Broker(tmp_path / "broker").start()
    yield b
    b.stop()
