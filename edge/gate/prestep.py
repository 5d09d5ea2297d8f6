"""The named pre-step any image gate may run before its graph: registration to a reference, then illumination
normalization, with OpenCV.

Registration (shape matching in the machine-vision libraries' terms) estimates the rigid motion between the
frame and the gate's reference image with OpenCV's ECC alignment (Evangelidis & Psarakis 2008,
``cv2.findTransformECC``, Euclidean motion), coarse to fine over a pyramid of small band-passed grey copies,
and warps the frame onto the reference at the working size. ECC maximises a correlation coefficient, so it is
blind to gain; the band-pass (a difference of Gaussians) removes the light gradient it is not blind to.
Measured on the generated set (±8 px, ±3°): every frame converges from the identity, to about 0.2 px at the
working size; phase correlation as a starting shift was worse (wrong peaks off the belt's ribs).
Illumination normalization then fits a low-order polynomial to log(reference / frame) on a coarse grid, with
robust reweighting so a defect does not bend it, and multiplies the frame by that smooth gain field: a global
gain and a drifting light are removed, local structure is not.

>>> pre = Prestep(reference_rgb, PrestepParams())
>>> aligned, to_input = pre.apply(frame_at_working_size)   # float32 RGB 0..1; affine gate px → input px
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from edge.errors import GateSchemaError
from edge.gate.params import params_from_dict

log = logging.getLogger(__name__)

PRESTEP_NAME = "register_illumination"
_ECC: Any = cv2.findTransformECC  # OpenCV's stubs lack the (inputMask=None, gaussFiltSize) call
_IDENTITY = np.array([[1, 0, 0], [0, 1, 0]], np.float32)


@dataclass(frozen=True)
class PrestepParams:
    """The pre-step's parameters, recorded in the gate manifest.

    ``motion``: ``"euclidean"`` (shift + rotation) or ``"translation"``; ``registration_width``: the grey copy
    ECC runs on at the finest of its ``levels``; ``illumination_degree``: 0 = a gain only, 1 = plus a linear
    light gradient, 2 = quadratic.
    """

    register: bool = True
    motion: str = "euclidean"
    registration_width: int = 128
    levels: int = 3
    iterations: int = 30
    epsilon: float = 1e-4
    illumination: bool = True
    illumination_degree: int = 2
    illumination_width: int = 64

    def to_dict(self) -> dict[str, Any]:
        return {"name": PRESTEP_NAME, **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PrestepParams:
        if d.get("name") != PRESTEP_NAME:
            raise GateSchemaError(f"prestep: unknown pre-step {d.get('name')!r}; this version knows {PRESTEP_NAME!r}")
        params = params_from_dict(cls, d, "prestep")
        if params.motion not in ("euclidean", "translation") or params.illumination_degree not in (0, 1, 2):
            what = f"motion {params.motion!r} / illumination_degree {params.illumination_degree}"
            raise GateSchemaError(f"prestep: {what} unsupported")
        return params


class Prestep:
    """Registration + illumination normalization against one reference image at the gate's working size.

    >>> pre = Prestep(reference, PrestepParams(illumination_degree=1))
    >>> aligned, to_input = pre.apply(frame)
    """

    def __init__(self, reference: np.ndarray, params: PrestepParams) -> None:
        self.params = params
        self.reference = reference
        self.size = (reference.shape[1], reference.shape[0])  # (w, h)
        h, w = reference.shape[:2]
        finest = min(1.0, params.registration_width / w)
        self._scales = [finest / 2**i for i in reversed(range(params.levels)) if w * finest / 2**i >= 16]
        self._pyramid = self._bands(reference)
        iw = min(w, params.illumination_width)
        self._ill_size = (iw, max(2, round(h * iw / w)))
        self._log_ref = self._log_lum(reference.astype(np.float32), self._ill_size)
        self._basis_small = _poly_basis(*self._ill_size, params.illumination_degree)

    def apply(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``frame`` (RGB uint8 at the working size) → (aligned float32 RGB 0..1, 2×3 affine gate px → frame px)."""
        m = self.register(frame) if self.params.register else _IDENTITY.copy()
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        aligned: np.ndarray = frame.astype(np.float32)
        if self.params.register:
            aligned = cv2.warpAffine(aligned, m, self.size, flags=flags, borderMode=cv2.BORDER_REPLICATE)
        if self.params.illumination:
            aligned *= (self._gain_field(aligned) * np.float32(1 / 255))[:, :, None]
        else:
            aligned *= np.float32(1 / 255)
        return np.clip(aligned, 0.0, 1.0, out=aligned), m

    def register(self, frame: np.ndarray) -> np.ndarray:
        """The 2×3 affine ``m`` with frame(m · x) ≈ reference(x), in working-size pixels."""
        motion = cv2.MOTION_EUCLIDEAN if self.params.motion == "euclidean" else cv2.MOTION_TRANSLATION
        m: Any = _IDENTITY.copy()
        scale = 1.0
        for level, (ref, band, s) in enumerate(zip(self._pyramid, self._bands(frame), self._scales, strict=True)):
            m[:, 2] *= s / scale
            iterations = self.params.iterations if level == 0 else max(5, self.params.iterations // 3)
            criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, iterations, self.params.epsilon)
            try:
                _, m = _ECC(ref, band, m, motion, criteria, None, 1)
            except cv2.error as exc:  # no convergence (blank frame, part missing): keep the coarser estimate
                log.debug("ECC registration did not converge at scale %.3f (%s)", s, exc.err)
            m = m.copy()
            scale = s
        m[:, 2] /= scale
        return m

    def _gain_field(self, aligned: np.ndarray) -> np.ndarray:
        """exp(poly) with poly ≈ log(reference / frame) on a coarse grid, fitted robustly (defects are outliers)."""
        target = self._log_ref - self._log_lum(aligned, self._ill_size)
        a, y = self._basis_small, target.reshape(-1)
        weights = np.ones_like(y)
        for _ in range(3):  # iteratively reweighted least squares, Tukey-like: outliers beyond 3 MADs drop out
            aw = a * weights[:, None]  # normal equations: a 6×6 solve, where lstsq's LAPACK path costs ms
            coef = np.linalg.solve(aw.T @ a + 1e-6 * np.eye(a.shape[1], dtype=a.dtype), aw.T @ y)
            resid = y - a @ coef
            mad = float(np.median(np.abs(resid - np.median(resid)))) * 1.4826 + 1e-6
            weights = (np.abs(resid) < 3 * mad).astype(np.float32)
        coarse = np.exp(a @ coef.astype(np.float32)).reshape(self._ill_size[1], self._ill_size[0])
        return cv2.resize(coarse, self.size, interpolation=cv2.INTER_LINEAR)  # smooth: upsampling is exact enough

    def _bands(self, img: np.ndarray) -> list[np.ndarray]:
        """Grey copies at each pyramid scale, band-passed: σ 1 px against σ width / 40 (3.2 px at 128 px)."""
        grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        out = []
        for s in reversed(self._scales):  # finest first; each coarser level is resized from the previous one
            size = (max(8, round(img.shape[1] * s)), max(8, round(img.shape[0] * s)))
            grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
            small = cv2.GaussianBlur(grey.astype(np.float32), (0, 0), 1.0)
            out.append(small - cv2.GaussianBlur(small, (0, 0), size[0] / 40))
        return out[::-1]

    @staticmethod
    def _log_lum(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        grey = cv2.cvtColor(img.astype(np.float32), cv2.COLOR_RGB2GRAY)
        return np.log(cv2.resize(grey, size, interpolation=cv2.INTER_AREA) + 1.0)


def _poly_basis(w: int, h: int, degree: int) -> np.ndarray:
    """Monomials in x, y ∈ [-1, 1] up to ``degree``: shape [h·w, terms], float32."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    x, y = (x.reshape(-1) / max(w - 1, 1)) * 2 - 1, (y.reshape(-1) / max(h - 1, 1)) * 2 - 1
    terms = [x**i * y**j for total in range(degree + 1) for i in range(total + 1) for j in [total - i]]
    return np.stack(terms, axis=1).astype(np.float32)


__all__ = ["PRESTEP_NAME", "Prestep", "PrestepParams"]
