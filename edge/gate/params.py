"""Rebuild a gate's parameter dataclass from its manifest entry, checking each value's type.

>>> mel = params_from_dict(MelParams, {"n_fft": 1024, "hop": 256}, "sound.features")
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

from edge.errors import GateSchemaError

T = TypeVar("T")
_KINDS: dict[str, tuple[type, ...]] = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}


def params_from_dict(cls: type[T], d: dict[str, Any], where: str) -> T:
    """``cls(**d)`` for the keys ``cls`` knows (others are ignored: a newer writer may add some), with every
    value's type checked against the field's annotation; raises :class:`GateSchemaError` naming the key."""
    values: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name not in d:
            continue
        value: Any = d[f.name]
        kinds = _KINDS.get(str(f.type), (object,))
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            raise GateSchemaError(f"{where}.{f.name}: expected {f.type}, got {value!r}")
        values[f.name] = float(d[f.name]) if f.type == "float" else value
    try:
        return cls(**values)
    except TypeError as exc:  # a field without a default is missing
        raise GateSchemaError(f"{where}: {exc}") from None


__all__ = ["params_from_dict"]
