"""``edge demo`` as a new user runs it: the story in order, where it wrote things, no raw control bytes, reuse."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def demo(work: Path) -> subprocess.CompletedProcess[str]:
    # the tiny preset and the small data set keep CI fast; `./scripts/demo` trains and uses the full set
    args = ["--workdir", str(work), "--preset", "tiny", "--dataset", "small", "--max-new-tokens", "24"]
    return subprocess.run([sys.executable, "-m", "edge", "demo", *args], capture_output=True, text=True, timeout=1200)


def test_demo_tells_its_story(tmp_path: Path) -> None:
    work = tmp_path / "demo"
    proc = demo(work)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert f"Everything it writes goes to {work}/" in out.splitlines()[1]
    steps = re.findall(r"^== (\d)/8 ", out, re.M)
    assert steps == ["1", "2", "3", "4", "5", "6", "7", "8"]
    # the random-weight caveat comes before the answer it explains, and the parity table prints once
    lines = out.splitlines()
    caveat = next(i for i, line in enumerate(lines) if "Random weights give gibberish" in line)
    assert lines[caveat + 1].startswith("   > ")  # the answer follows its caveat
    prose = " ".join(out.split())  # notes are re-wrapped paragraphs
    assert prose.index("RANDOM weights") < prose.index("every case diverges at once") < prose.index("parity text ")
    assert len(re.findall(r"parity text ", out)) == 1
    # the inspection loop: every frame's score, anomalies with their region and a valid structured report
    scores = re.findall(r"^   > frame, (\w+)\s+score (\d\.\d\d)  (passed|ANOMALY at x \d+-\d+, y \d+-\d+)", out, re.M)
    assert len(scores) == 20, scores
    assert any(verdict.startswith("ANOMALY") for _, _, verdict in scores)
    assert re.search(r"^   > sound \d\.\d-\d\.\d s\s+score \d\.\d\d  ANOMALY", out, re.M)  # the knock
    assert re.search(r"^   >     frame, \w+: report: anomaly (true|false), ", out, re.M)
    # every decision of the loop journaled, with the anomalies' evidence on disk
    journaled = re.search(
        r"^   > (\d+) decisions journaled in (\S+) \(.*(\d+) scored.*\), (\d+) evidence files", out, re.M
    )
    assert journaled and int(journaled.group(1)) >= 20 and int(journaled.group(4)) >= 2, out[-3000:]
    assert (work / "state" / "journal.db").exists() and any((work / "state" / "evidence").rglob("*.png"))
    assert "the daemon exited with 0" in out and f"Done. Everything is in {work}/" in out
    assert (work / "tiny-int4-bundle" / "manifest.json").exists() and (work / "gate-small" / "manifest.json").exists()
    printable = set("\n\t")
    assert all(ch.isprintable() or ch in printable for ch in out), "raw control characters reached the terminal"
    assert "\r" not in proc.stderr  # no library progress bars redrawn in a log
    again = demo(work)  # a second run reuses the checkpoint, the bundle and the gate
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count(": reused") == 3 and "(already fitted: reused)" in again.stdout
