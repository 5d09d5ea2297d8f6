"""Score camera frames with an image gate: resize to the working size, the optional registration and
illumination pre-step, the graph (anomalib's contract; fixed batches padded), then the decision and region.

>>> gate = load_gate(Path("gate"))
>>> result = gate.image.score(rgb)                     # RGB uint8 [H, W, 3], any size
>>> results = gate.image.score_batch(frames, threshold=0.6)
>>> result = gate.image.score_jpeg(jpeg_bytes)         # decodes at a reduced scale when the frame is large
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from edge.errors import GateError, ImageError
from edge.gate.contract import INPUT_NAME, check_contract, contract_outputs
from edge.gate.prestep import Prestep
from edge.gate.result import (
    DEFAULT_THRESHOLD,
    Affine,
    GateResult,
    anomalous_region,
    box_to_frame,
    check_score,
    check_threshold,
)
from edge.gate.session import open_session
from edge.runtime.image import ImageLimits, decode_image, probe_image

MAX_DYNAMIC_BATCH = 16


@dataclass(frozen=True)
class _Prepared:
    tensor: np.ndarray  # float32 [3, h, w], 0..1
    to_input: np.ndarray  # 2×3: gate-input px → working-size px (the registration; identity without it)
    frame_size: tuple[int, int]  # (w, h) of the frame as the caller knows it


class ImageGate:
    """An image gate in anomalib's ONNX contract, with an optional pre-step.

    ``score_knot`` is the graph's normalized score at the calibrated threshold (0.5 unless an anomalib graph
    was recalibrated on the station's good frames); scores are mapped piecewise-linearly so that the
    calibrated threshold is always 0.5 in :class:`GateResult`.

    >>> gate = ImageGate(Path("gate/image.onnx"), gate_id="3f2a…", input_size=(192, 256))
    >>> gate.score(frame).label
    """

    def __init__(
        self,
        graph: Path,
        *,
        gate_id: str,
        input_size: tuple[int, int],
        prestep: Prestep | None = None,
        score_knot: float = DEFAULT_THRESHOLD,
        references: Sequence[Path] = (),
        threads: int = 1,
    ) -> None:
        self.gate_id = gate_id
        self.input_size = input_size  # (h, w)
        self.prestep = prestep
        self.score_knot = score_knot
        self._references = list(references)
        self._where = f"gate {gate_id} ({graph})"
        self._session = open_session(graph, threads, str(graph))
        contract = check_contract(self._session, str(graph))
        for fixed, want, what in ((contract.height, input_size[0], "height"), (contract.width, input_size[1], "width")):
            if fixed is not None and fixed != want:
                raise GateError(f"{graph}: the graph's input {what} is {fixed}, the manifest says {want}")
        if prestep is not None and prestep.size != (input_size[1], input_size[0]):
            raise GateError(f"{graph}: the pre-step reference is {prestep.size}, the input size {input_size[::-1]}")
        self.batch = contract.batch
        self._probe()

    def score(self, rgb: np.ndarray, threshold: float | None = None) -> GateResult:
        """Score one RGB ``uint8`` frame ``[H, W, 3]`` (grey ``[H, W]`` is accepted)."""
        return self.score_batch([rgb], threshold)[0]

    def score_batch(self, frames: Sequence[np.ndarray], threshold: float | None = None) -> list[GateResult]:
        """Score several frames in as few graph runs as the graph's batch allows; one result per frame.

        A non-finite score for any frame raises :class:`GateScoreError` naming it; score that frame alone
        (``score``) to keep the others' results."""
        t = check_threshold(threshold)
        started = time.perf_counter()
        prepared = [self._prepare(f) for f in frames]
        return self._run(prepared, t, started)

    def score_jpeg(self, data: bytes, threshold: float | None = None, limits: ImageLimits | None = None) -> GateResult:
        """Score encoded image bytes; a large JPEG is decoded at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling)
        when that still covers the working size, which costs a fraction of a full decode. The region is in
        the full frame's pixels."""
        t = check_threshold(threshold)
        started = time.perf_counter()
        kind, width, height = probe_image(data, limits)
        h, w = self.input_size
        factor = next((f for f in (8, 4, 2) if width // f >= w and height // f >= h), 1)
        if kind != "JPEG" or factor == 1:
            return self._run([self._prepare(decode_image(data, limits))], t, started)[0]
        flag = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}[factor]
        bgr = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
        if bgr is None:
            raise ImageError("cannot decode the JPEG image: the data is corrupt or truncated")
        rotated = (bgr.shape[1] > bgr.shape[0]) != (width > height) and width != height  # EXIF orientation applied
        size = (height, width) if rotated else (width, height)
        return self._run([self._prepare(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), size)], t, started)[0]

    def reference_images(self, k: int) -> list[np.ndarray]:
        """Up to ``k`` good frames stored in the gate at fit time (RGB ``uint8``, downscaled), for k-shot prompts."""
        out = []
        for path in self._references[: max(0, k)]:
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                raise GateError(f"{path}: cannot read the gate's reference image")
            out.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        return out

    def _prepare(self, rgb: np.ndarray, frame_size: tuple[int, int] | None = None) -> _Prepared:
        rgb = _rgb(rgb)
        h, w = self.input_size
        small = rgb if rgb.shape[:2] == (h, w) else cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
        if self.prestep is not None:
            aligned, to_input = self.prestep.apply(small)
        else:
            aligned, to_input = small.astype(np.float32) * np.float32(1 / 255), np.eye(2, 3, dtype=np.float32)
        size = frame_size or (rgb.shape[1], rgb.shape[0])
        return _Prepared(np.ascontiguousarray(aligned.transpose(2, 0, 1)), to_input, size)

    def _run(self, prepared: list[_Prepared], threshold: float, started: float) -> list[GateResult]:
        step = self.batch or MAX_DYNAMIC_BATCH
        results: list[GateResult] = []
        for i in range(0, len(prepared), step):
            chunk = prepared[i : i + step]
            x = np.stack([p.tensor for p in chunk])
            if self.batch is not None and len(chunk) < self.batch:  # fixed-batch graph: pad with copies
                x = np.concatenate([x, np.repeat(x[:1], self.batch - len(chunk), axis=0)])
            scores, maps = self._infer(x)
            for j, p in enumerate(chunk):
                what = "the frame" if len(prepared) == 1 else f"frame {i + j} of the {len(prepared)} in the batch"
                results.append(self._decide(p, float(scores[j]), maps[j], threshold, what))
        per_frame = (time.perf_counter() - started) / max(1, len(prepared))
        return [replace(r, latency_s=per_frame) for r in results]

    def _infer(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        try:
            outputs = self._session.run(None, {INPUT_NAME: x})
        except Exception as exc:  # onnxruntime's own exception classes
            raise GateError(f"{self._where}: the graph failed on a batch of {len(x)} ({exc})") from None
        scores, maps = contract_outputs(outputs, len(x), self._where)
        return _remap(scores, self.score_knot), _remap(maps, self.score_knot)

    def _decide(self, p: _Prepared, score: float, amap: np.ndarray, threshold: float, what: str) -> GateResult:
        check_score(score, self.gate_id, what)
        label = score > threshold
        h, w = self.input_size
        map_h, map_w = amap.shape
        to_frame = _compose(_scale(p.frame_size[0] / w, p.frame_size[1] / h), p.to_input, _scale(w / map_w, h / map_h))
        box = anomalous_region(amap, threshold, label)
        affine: Affine = tuple(float(v) for v in to_frame.reshape(-1))  # type: ignore[assignment]
        region = box_to_frame(box, affine, p.frame_size) if box is not None else None
        return GateResult(score, label, threshold, self.gate_id, amap.astype(np.float32), region, 0.0, affine)

    def _probe(self) -> None:
        """One run at load with a grey frame: the real output shapes must honour the contract too."""
        h, w = self.input_size
        x = np.full((self.batch or 1, 3, h, w), 0.5, np.float32)
        self._infer(x)


def _rgb(arr: np.ndarray) -> np.ndarray:
    if not isinstance(arr, np.ndarray):
        raise ImageError(f"the gate scores RGB uint8 arrays, got {type(arr).__name__}; use score_jpeg for bytes")
    if arr.dtype != np.uint8:
        raise ImageError(f"the gate scores RGB uint8 arrays, got dtype {arr.dtype}")
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageError(f"the gate scores [H, W, 3] RGB or [H, W] grey frames, got shape {arr.shape}")
    return arr


def _remap(x: np.ndarray, knot: float) -> np.ndarray:
    """Piecewise-linear map of [0, 1] sending ``knot`` to 0.5 (the identity when ``knot`` is 0.5)."""
    if knot == DEFAULT_THRESHOLD:
        return x
    return np.where(x <= knot, x * (0.5 / knot), 0.5 + (x - knot) * (0.5 / (1.0 - knot))).astype(np.float32)


def _scale(sx: float, sy: float) -> np.ndarray:
    """Resize between pixel grids (pixel-centre convention, as cv2.resize): x' = s·x + (s − 1)/2."""
    return np.array([[sx, 0, (sx - 1) / 2], [0, sy, (sy - 1) / 2]], np.float64)


def _compose(*affines: np.ndarray) -> np.ndarray:
    out = np.eye(3)
    for a in affines:
        out = out @ np.vstack([a.astype(np.float64), [0, 0, 1]])
    return out[:2]


__all__ = ["ImageGate"]
