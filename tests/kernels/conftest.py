"""The kernel library must have been built by ``pip install`` (scripts/env fetches the headers first)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.kernels.library import library_path


@pytest.fixture(scope="session")
def library() -> Path:
    path = library_path()
    assert path is not None, "edge/kernels was not built: run scripts/ort-headers, then pip install -e . again"
    return path
