"""Open a gate graph in onnxruntime: one thread by default, no spinning, errors translated at the boundary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnxruntime as ort

from edge.errors import GateContractError


def open_session(graph: Path | bytes, threads: int = 1, where: str = "gate graph") -> ort.InferenceSession:
    """An ``InferenceSession`` on the CPU with ``threads`` intra-op threads.

    The gate runs on its own worker beside the language model, so its pool never spins waiting for work
    (``session.intra_op.allow_spinning = 0``): an idle gate leaves the cores to the model.
    """
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    source: Any = str(graph) if isinstance(graph, Path) else graph
    try:
        return ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... classes, not a common base
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GateContractError(f"{where}: onnxruntime cannot load it as an ONNX graph ({first})") from None


__all__ = ["open_session"]
