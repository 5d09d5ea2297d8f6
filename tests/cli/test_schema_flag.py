"""``--schema FILE|default`` on ``edge run`` (in process) and ``edge describe`` (against a running daemon)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from edge.station.report import DEFAULT_DEFECTS, default_report_schema
from tests.tools import validate_report


def edge(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge", *args], capture_output=True, text=True, timeout=timeout)


def test_edge_run_answers_with_a_valid_report(int4_bundle: Path, tmp_path: Path) -> None:
    proc = edge("run", str(int4_bundle), "--prompt", "Report the defect.", "--schema", "default", "--no-verify")
    assert proc.returncode == 0, proc.stderr
    validate_report(proc.stdout, default_report_schema(DEFAULT_DEFECTS))
    own = tmp_path / "schema.json"
    schema = {
        "type": "object",
        "properties": {"ok": {"type": "boolean"}},
        "required": ["ok"],
        "additionalProperties": False,
    }
    own.write_text(json.dumps(schema))
    proc = edge("run", str(int4_bundle), "--prompt", "Good?", "--schema", str(own), "--no-verify")
    assert proc.returncode == 0 and set(json.loads(proc.stdout)) == {"ok"}, proc.stdout + proc.stderr
    short = edge("run", str(int4_bundle), "--prompt", "Good?", "--schema", "default", "--max-new-tokens", "4")
    assert short.returncode == 6 and "no report: max_new_tokens (4) ran out" in short.stderr
    missing = edge("run", str(int4_bundle), "--prompt", "Good?", "--schema", str(tmp_path / "none.json"))
    assert missing.returncode == 2 and "--schema" in missing.stderr and missing.stderr.count("\n") == 1


def test_edge_describe_asks_for_the_station_schema(daemon) -> None:
    proc = edge("describe", "--target", daemon.target, "--prompt", "Report.", "--schema", "default", "--no-stream")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert {"anomaly", "defect_type", "recommended_action"} <= set(report)
