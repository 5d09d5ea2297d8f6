"""What the tests share: real command-line tools (promtool, systemd-analyze), found or a clear skip; process memory."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


def required_tool(name: str, package: str) -> str:
    """The path of ``name``; skipped where it is not installed, a failure in CI (``.ci/run`` installs it)."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing; CI installs it (Debian package '{package}')")
        pytest.skip(f"{name} not installed (apt-get install {package}); in CI this fails instead")
    return path


def rss_mib() -> float:
    """Resident memory of this process (the in-process test daemon included), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def validate_report(text: str, schema: dict) -> dict:
    """``text`` parsed and validated against ``schema`` in decimal arithmetic, as the daemon does (a float
    validator rejects valid reports: 0.411 is not a multiple of 0.001 in binary floating point)."""
    import json
    from decimal import Decimal

    from edge.runtime.structured import decimal_validator

    doc = json.loads(text, parse_float=Decimal)
    decimal_validator(json.dumps(schema)).validate(doc)
    return dict(doc)
