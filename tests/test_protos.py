"""proto/ is the source of truth: the committed edge/v1 code must equal a fresh generation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_generated_code_matches_the_protos(tmp_path: Path) -> None:
    protos = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "proto").rglob("*.proto"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-Iproto",
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            *protos,
        ],
        cwd=ROOT,
        check=True,
    )
    fresh = {p.relative_to(tmp_path): p.read_text() for p in tmp_path.rglob("*.py*") if p.is_file()}
    assert fresh, "protoc generated nothing"
    for rel, text in fresh.items():
        committed = ROOT / rel
        assert committed.exists(), f"{rel} is not committed; run scripts/protos"
        assert committed.read_text() == text, f"{rel} is stale; run scripts/protos and commit the result"
