"""Figures the README quotes from a command are that command's output, so they cannot go stale."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_memory_plan_block_is_edge_plans_output() -> None:
    text = README.read_text()
    block = r"`(edge plan --preset 12b [^`]*)` \(shapes only, nothing is built\):\n\n```\n(.*?)```"
    match = re.search(block, text, re.S)
    assert match, "README: the 12B memory plan block is gone"
    argv = match.group(1).split()[1:]
    proc = subprocess.run([sys.executable, "-m", "edge", *argv], capture_output=True, text=True, check=True)
    table = proc.stdout.split("  assumptions:\n", 1)[0]  # the README explains the assumptions in prose
    assert match.group(2) == table, f"update the README block with the output of: {match.group(1)}"


def test_built_in_report_block_is_the_built_in_schema() -> None:
    import json

    from edge.station.report import default_report_schema

    text = README.read_text()
    match = re.search(r"### The built-in inspection report\n.*?```json\n(.*?)```", text, re.S)
    assert match, "README: the built-in report schema block is gone"
    assert json.loads(match.group(1)) == default_report_schema(), "update it from: python -m edge.station.report"
