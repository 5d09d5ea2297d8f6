"""Package boundaries: the station path never imports torch or transformers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

STATION_MODULES = [
    "edge.runtime.engine",
    "edge.runtime.media",
    "edge.bundle.verify",
    "edge.cli.main",
    "edge.gate",
    "edge.gate.fit",
    "edge.gate.eval_report",
    "edge.dataset.writer",
]


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


def test_scoring_with_a_gate_imports_neither_torch_nor_onnx(fitted_gate: Path) -> None:
    """The daemon's gate path is onnxruntime, numpy and OpenCV only (``onnx`` is for ``edge gate fit``)."""
    code = (
        "import sys\nimport numpy as np\nfrom pathlib import Path\n"
        "from edge.gate import load_gate, crop_region\n"
        f"gate = load_gate(Path({str(fitted_gate)!r}))\n"
        "r = gate.image.score(np.full((240, 320, 3), 90, np.uint8))\n"
        "crop_region(np.zeros((240, 320, 3), np.uint8), r.region or (0, 0, 10, 10))\n"
        "gate.sound.score(np.zeros(32000, np.float32))\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'onnx'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
