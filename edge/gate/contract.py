"""anomalib's ONNX export as the one gate contract: check a graph's I/O at load, and its outputs at run time.

The contract (verified with anomalib 2.6.2 and 2.7.0 PaDiM/PatchCore exports): one input ``input``, float32
RGB NCHW in 0..1, H×W fixed or dynamic; outputs in this order: ``pred_score`` float32 ``[B]`` or ``[B, 1]``,
``pred_label`` bool, ``anomaly_map`` float32 ``[B, 1, H, W]``, ``pred_mask`` bool ``[B, 1, H, W]``; a
normalized score above 0.5 is anomalous. The batch may be fixed (2.7's PatchCore: 2), then inputs are padded.

>>> contract = check_contract(session, "gate/image.onnx")
>>> contract.batch, contract.height, contract.width     # None where the graph leaves a dimension dynamic
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edge.errors import GateContractError

INPUT_NAME = "input"
OUTPUTS = (  # name, onnxruntime type, allowed ranks
    ("pred_score", "tensor(float)", (1, 2)),
    ("pred_label", "tensor(bool)", (1, 2)),
    ("anomaly_map", "tensor(float)", (4,)),
    ("pred_mask", "tensor(bool)", (4,)),
)


@dataclass(frozen=True)
class GraphContract:
    """What a contract-conforming graph fixes: the batch and input size, where they are not dynamic."""

    batch: int | None
    height: int | None
    width: int | None

    def io(self) -> dict[str, Any]:
        """The I/O as the gate manifest records it."""
        shape = [self.batch or "B", 3, self.height or "H", self.width or "W"]
        return {
            "inputs": [{"name": INPUT_NAME, "dtype": "float32", "shape": shape}],
            "outputs": [{"name": n, "dtype": "float32" if "float" in t else "bool"} for n, t, _ in OUTPUTS],
        }


def check_contract(session: Any, where: str) -> GraphContract:
    """Check an ``onnxruntime.InferenceSession``'s declared I/O; raise :class:`GateContractError` in one line."""
    inputs = session.get_inputs()
    if len(inputs) != 1 or inputs[0].name != INPUT_NAME:
        found = ", ".join(repr(i.name) for i in inputs)
        raise GateContractError(f"{where}: the graph's inputs are [{found}]; the gate contract has one input 'input'")
    inp = inputs[0]
    if inp.type != "tensor(float)":
        raise GateContractError(f"{where}: input 'input' is {inp.type}, the contract needs tensor(float) (RGB 0..1)")
    shape: Any = inp.shape
    if shape is None or len(shape) != 4:
        raise GateContractError(f"{where}: input 'input' has rank {_rank(shape)}, the contract needs 4 (NCHW)")
    if isinstance(shape[1], int) and shape[1] != 3:
        raise GateContractError(f"{where}: input 'input' has {shape[1]} channels, the contract needs 3 (RGB)")
    outputs = session.get_outputs()
    names = [o.name for o in outputs]
    for i, (name, kind, ranks) in enumerate(OUTPUTS):
        if name not in names:
            raise GateContractError(f"{where}: output {name!r} is missing (outputs: {', '.join(names) or 'none'})")
        if names[i] != name:
            raise GateContractError(f"{where}: output {i} is {names[i]!r}, the contract puts {name!r} there")
        out = outputs[i]
        if out.type != kind:
            raise GateContractError(f"{where}: output {name!r} is {out.type}, the contract needs {kind}")
        if (
            out.shape and len(out.shape) not in ranks
        ):  # [] is how onnxruntime reports an unknown rank: the probe run checks
            want = " or ".join(str(r) for r in ranks)
            raise GateContractError(f"{where}: output {name!r} has rank {len(out.shape)}, the contract needs {want}")
    return GraphContract(*(d if isinstance(d, int) and d > 0 else None for d in (shape[0], shape[2], shape[3])))


def contract_outputs(outputs: list[np.ndarray], batch: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Scores ``[batch]`` and maps ``[batch, H, W]`` from one run's outputs, checking their real shapes."""
    score, _, amap, _ = outputs[:4]
    if score.dtype != np.float32 or amap.dtype != np.float32:
        raise GateContractError(f"{where}: pred_score/anomaly_map came back as {score.dtype}/{amap.dtype}, not float32")
    if score.ndim not in (1, 2) or score.shape[0] != batch or score.size != batch:
        want = f"[{batch}] or [{batch}, 1]"
        raise GateContractError(f"{where}: pred_score came back with shape {score.shape}; expected {want}")
    if amap.ndim != 4 or amap.shape[0] != batch or amap.shape[1] != 1:
        raise GateContractError(f"{where}: anomaly_map came back with shape {amap.shape}; expected [{batch}, 1, H, W]")
    return score.reshape(batch), amap[:, 0]


def _rank(shape: Any) -> str:
    return str(len(shape)) if shape else "unknown"


__all__ = ["INPUT_NAME", "OUTPUTS", "GraphContract", "check_contract", "contract_outputs"]
