"""Builds the int4 kernel library (edge/kernels/src) as part of ``pip install``; everything else is in pyproject.toml.

The library is an onnxruntime custom-op library, loaded with ``SessionOptions.register_custom_ops_library``,
not a Python module: it is built like an extension so that wheels and editable installs carry it. It needs
onnxruntime's C API headers, which ``scripts/ort-headers`` unpacks into ``.tools/onnxruntime`` (or set
``ORT_INCLUDE_DIR``). Without them the install goes on without the library, says so, and the runtime uses
onnxruntime's MatMulNBits; ``EDGE_KERNELS_REQUIRED=1`` makes that an error instead (CI sets nothing: the
tests check that the library was built).
"""

from __future__ import annotations

import os
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).parent
SOURCES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "edge/kernels/src").glob("*.cpp"))
HEADERS = os.environ.get("ORT_INCLUDE_DIR") or str(ROOT / ".tools/onnxruntime/usr/include/onnxruntime")


class BuildKernels(build_ext):
    """build_ext for a plain shared library: the ISA flags are set per file (#pragma GCC target), not here."""

    def build_extensions(self) -> None:
        if not (Path(HEADERS) / "onnxruntime_lite_custom_op.h").is_file():
            message = (
                f"edge-inspector: onnxruntime C API headers not found in {HEADERS}; run scripts/ort-headers "
                "(or set ORT_INCLUDE_DIR). Installing without the int4 kernel library: the runtime will use "
                "onnxruntime's MatMulNBits."
            )
            if os.environ.get("EDGE_KERNELS_REQUIRED") == "1":
                raise SystemExit(message)
            print(message)
            return
        super().build_extensions()

    def get_export_symbols(self, ext: Extension) -> list[str]:
        return ["RegisterCustomOps", "edge_kernels_resolve", "edge_kernels_peak"]  # not a Python module: no PyInit_ symbol


setup(
    ext_modules=[
        Extension(
            "edge.kernels._int4",
            sources=SOURCES,
            include_dirs=[HEADERS],
            depends=sorted(str(p.relative_to(ROOT)) for p in (ROOT / "edge/kernels/src").glob("*.h")),
            language="c++",
            extra_compile_args=["-std=c++17", "-O3", "-fvisibility=hidden", "-Wall", "-Wextra"],
        )
    ],
    cmdclass={"build_ext": BuildKernels},
)
