"""The real tiny engine (fp32 bundle), shared by the station tests in this folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="module")
def engine(fp32_bundle: Path) -> Any:
    from edge.runtime.engine import Engine

    return Engine(fp32_bundle, threads=1)
