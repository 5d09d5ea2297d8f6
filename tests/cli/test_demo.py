"""``edge demo`` as a new user runs it: the story in order, where it wrote things, no raw control bytes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_demo_tells_its_story(tmp_path: Path) -> None:
    work = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "edge", "demo", "--workdir", str(work), "--max-new-tokens", "24"],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert f"Everything it writes goes to {work}/" in out.splitlines()[1]
    steps = re.findall(r"^== (\d)/5 ", out, re.M)
    assert steps == ["1", "2", "3", "4", "5"]
    # the random-weight caveat comes before the answer it explains, and the parity table prints once
    lines = out.splitlines()
    caveat = next(i for i, line in enumerate(lines) if "Random weights give gibberish" in line)
    assert lines[caveat + 1].startswith("   > ")  # the answer follows its caveat
    prose = " ".join(out.split())  # notes are re-wrapped paragraphs
    assert prose.index("RANDOM weights") < prose.index("every case diverges at once") < prose.index("parity text ")
    assert len(re.findall(r"parity text ", out)) == 1
    assert "the daemon exited with 0" in out and f"Done. Everything is in {work}/" in out
    assert (work / "tiny-int4-bundle" / "manifest.json").exists() and (work / "frame.jpg").exists()
    printable = set("\n\t")
    assert all(ch.isprintable() or ch in printable for ch in out), "raw control characters reached the terminal"
    assert "\r" not in proc.stderr  # no library progress bars redrawn in a log
