"""Package boundaries: the station path never imports torch or transformers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

STATION_MODULES = ["edge.runtime.engine", "edge.runtime.media", "edge.bundle.verify", "edge.cli.main"]


def test_station_runtime_imports_no_torch() -> None:
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in STATION_MODULES)
        + "from edge.cli.main import build_parser\nbuild_parser()\n"
        + "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'onnx'))\n"
        + "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_running_a_bundle_imports_no_torch(fp32_bundle: Path) -> None:
    code = (
        "import sys\n"
        "from edge.runtime.engine import Engine, GenerationParams\n"
        f"e = Engine.load({str(fp32_bundle)!r}, threads=1)\n"
        "e.generate('Describe.', params=GenerationParams(max_new_tokens=3))\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_cli_help_is_instant_and_light() -> None:
    code = (
        "import sys\nfrom edge.cli.main import main\n"
        "try:\n    main(['run', '--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'onnxruntime', 'cv2'))\n"
        "print('HEAVY:' + ','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "--prompt" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "HEAVY:"
