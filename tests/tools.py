"""Real command-line tools the tests drive (promtool, systemd-analyze): found, or a clear skip / CI failure."""

from __future__ import annotations

import os
import shutil

import pytest


def required_tool(name: str, package: str) -> str:
    """The path of ``name``; skipped where it is not installed, a failure in CI (``.ci/run`` installs it)."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing; CI installs it (Debian package '{package}')")
        pytest.skip(f"{name} not installed (apt-get install {package}); in CI this fails instead")
    return path
