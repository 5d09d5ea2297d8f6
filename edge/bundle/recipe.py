"""A bundle's weight layout, typed: the quantization recipe and the weight matmuls its graphs hold.

Both are written by ``edge export`` into the manifest (``quantization`` and ``weight_matmuls``) and read
back here on the station side, so the memory plan counts what the bundle holds instead of re-deriving it.

>>> rec = QuantRecipe.from_dict(manifest.quantization)
>>> rec.decoder.bits, [m.k for m in weight_matmuls(manifest.extra)]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from edge.errors import BundleSchemaError

SCHEMES = ("fp32", "int8", "int4")
EMBEDDINGS = ("fp32", "fp16", "int8", "int4", "lm_head")


@dataclass(frozen=True)
class LinearQuant:
    """How one family of MatMul weights is stored."""

    scheme: str = "fp32"  # fp32 | int8 | int4 (MatMulNBits with bits 8 or 4)
    block_size: int = 32
    symmetric: bool = True
    accuracy_level: int = 4  # MatMulNBits: 4 = int8 activations (fastest on AVX-512 VNNI), 0 = fp32

    @property
    def bits(self) -> int:
        return {"int4": 4, "int8": 8}[self.scheme]

    @classmethod
    def from_dict(cls, d: Any, where: str) -> LinearQuant:
        if isinstance(d, str):  # the short form "int8"
            d = {"scheme": d}
        if not isinstance(d, dict):
            raise BundleSchemaError(f"{where}: expected an object or a scheme name, got {type(d).__name__}")
        out = cls(**_known(cls, d, where))
        if out.scheme not in SCHEMES:
            raise BundleSchemaError(f"{where}.scheme: {out.scheme!r} is not one of {', '.join(SCHEMES)}")
        if out.block_size < 1:
            raise BundleSchemaError(f"{where}.block_size: must be positive, got {out.block_size}")
        return out


@dataclass(frozen=True)
class QuantRecipe:
    """A bundle's quantization: one choice per weight family, recorded in the manifest."""

    name: str = "fp32"
    decoder: LinearQuant = field(default_factory=LinearQuant)
    lm_head: LinearQuant = field(default_factory=LinearQuant)
    embedding: str = "fp32"  # fp32 | fp16 | int8 (per-row) | int4 (GatherBlockQuantized) | lm_head (shared blocks)
    embedding_block_size: int = 32
    vision: LinearQuant = field(default_factory=LinearQuant)
    audio: LinearQuant = field(default_factory=LinearQuant)
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Any) -> QuantRecipe:
        """The manifest's ``quantization`` object; BundleSchemaError names the field that is wrong."""
        if not isinstance(d, dict):
            raise BundleSchemaError(f"quantization: expected an object, got {type(d).__name__}")
        values = _known(cls, d, "quantization")
        for fam in ("decoder", "lm_head", "vision", "audio"):
            if fam in values:
                values[fam] = LinearQuant.from_dict(values[fam], f"quantization.{fam}")
        out = cls(**values)
        if out.embedding not in EMBEDDINGS:
            raise BundleSchemaError(f"quantization.embedding: {out.embedding!r} is not one of {', '.join(EMBEDDINGS)}")
        return out


@dataclass(frozen=True)
class WeightMatMul:
    """One distinct MatMulNBits weight layout in a graph, and how many nodes have it (manifest ``weight_matmuls``)."""

    graph: str
    k: int
    n: int
    bits: int
    block_size: int
    accuracy_level: int
    zero_points: bool
    count: int

    @property
    def blocks(self) -> int:
        return -(-self.k // self.block_size) * self.n

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def weight_matmuls(manifest_extra: dict[str, Any]) -> list[WeightMatMul] | None:
    """The recorded ``weight_matmuls`` of a manifest (its ``extra``), or None for a bundle from before them."""
    raw = manifest_extra.get("weight_matmuls")
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise BundleSchemaError(f"weight_matmuls: expected a list, got {type(raw).__name__}")
    return [WeightMatMul(**_known(WeightMatMul, row, f"weight_matmuls[{i}]", strict=True)) for i, row in enumerate(raw)]


def decoder_macs_per_position(matmuls: list[WeightMatMul]) -> int:
    """Multiply-adds of the decoder's 4-bit weight matmuls for one prompt position: what a prompt's prefill asks
    of the int8 dot product per token. The 8-bit LM head runs on the last position only, so it is left out and
    the count errs low, as a floor built on it must."""
    return sum(m.k * m.n * m.count for m in matmuls if m.graph == "decoder" and m.bits == 4)


def _known(cls: type, d: Any, where: str, strict: bool = False) -> dict[str, Any]:
    """The keys of ``d`` that are fields of ``cls``, each of the field's type (unknown keys are ignored)."""
    if not isinstance(d, dict):
        raise BundleSchemaError(f"{where}: expected an object, got {type(d).__name__}")
    types = {f.name: f.type for f in fields(cls)}
    if strict and (missing := set(types) - set(d)):
        raise BundleSchemaError(f"{where}: missing {', '.join(sorted(missing))}")
    out = {}
    for name, value in d.items():
        if name not in types:
            continue
        want = {"int": int, "bool": bool, "str": str}.get(str(types[name]))
        if want is not None and (not isinstance(value, want) or (want is int and isinstance(value, bool))):
            raise BundleSchemaError(f"{where}.{name}: expected {want.__name__}, got {value!r}")
        out[name] = value
    return out
