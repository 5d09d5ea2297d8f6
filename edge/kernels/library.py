"""Find the compiled kernel library and decide which weight-matmul path a session runs.

The path comes from ``EDGE_KERNELS`` (read when a bundle is opened, never at import):

- unset, ``""`` or ``auto``: our kernels with the best micro-kernel this CPU has (AVX-512 VNNI, AVX-VNNI,
  AVX2, scalar, in that order), or onnxruntime's ``MatMulNBits`` if the library is missing or cannot load;
- ``avx512vnni``, ``avxvnni``, ``avx2`` or ``scalar``: that micro-kernel (a CPU that cannot run it is an error);
- ``off``: onnxruntime's ``MatMulNBits``.

>>> choice = choose_kernels("auto")
>>> choice.label    # "edge-avx512vnni", or "matmulnbits" with choice.reason saying why
"""

from __future__ import annotations

import ctypes
import importlib.machinery
from dataclasses import dataclass
from pathlib import Path

from edge.errors import ConfigError

ENV = "EDGE_KERNELS"
ATTENTION_ENV = "EDGE_ATTENTION"  # auto (ours wherever our kernels run) or onnxruntime (keep GroupQueryAttention)
KV_ENV = "EDGE_KV_CACHE"  # auto (float16 for quantized bundles where our attention runs), float16 or float32
KV_CACHES = ("float16", "float32")
PATHS = ("avx512vnni", "avxvnni", "avx2", "scalar")  # the order auto prefers them in
MATMULNBITS = "matmulnbits"
DOMAIN = "edge.kernels"
OP = "MatMulInt4"
INT8_OP = "MatMulInt8"  # the decoder's int8 LM head
INT8_GRAPHS = ("decoder",)  # graphs whose int8 MatMulNBits nodes run MatMulInt8: one row per decode step there
# paths whose MatMulInt8 has a GEMM for prefill (panel8): there every graph's int8 nodes run it (the vision and
# audio graphs' hundreds of rows; elsewhere its GEMV would reread the weights every 4 rows). The memory plan
# counts those graphs' block sums as MatMulNBits' (a few MiB on the 12B: it errs high)
INT8_GEMM_PATHS = ("avx512vnni",)
ATTENTION_OP = "GroupAttention"
ATTENTION_INPUTS = 7  # query, key, value, past_key, past_value, seqlens_k, total_sequence_length
LIBRARY_STEM = "_int4"


@dataclass(frozen=True)
class KernelChoice:
    """Which kernels a session runs: ``isa`` is a micro-kernel name, or None for onnxruntime's MatMulNBits."""

    isa: str | None
    library: Path | None
    reason: str = ""

    @property
    def label(self) -> str:
        """``edge-<isa>`` or ``matmulnbits``: the value of the ``kernels`` label on ``edge_inspector_build_info``."""
        return f"edge-{self.isa}" if self.isa else MATMULNBITS


def takes(bits: int, block_size: int, accuracy_level: int, zero_points: bool) -> bool:
    """Whether MatMulInt4 computes exactly what a MatMulNBits node with these attributes asks for.

    4 bits, block 32, no zero points, and accuracy level 4 (int8 activations per block, as ours); a node
    that asks for fp32 activations (levels 0–3) or another layout stays on MatMulNBits.
    """
    return bits == 4 and block_size == 32 and accuracy_level == 4 and not zero_points


def takes_int8(bits: int, block_size: int, accuracy_level: int, zero_points: bool) -> bool:
    """Whether MatMulInt8 computes exactly what a MatMulNBits node with these attributes asks for: 8 bits,
    block 32, accuracy level 4, no zero points (the implicit 128)."""
    return bits == 8 and block_size == 32 and accuracy_level == 4 and not zero_points


def library_path() -> Path | None:
    """The compiled library next to this module (built by ``pip install``), or None if it was not built."""
    here = Path(__file__).parent
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = here / f"{LIBRARY_STEM}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def resolve(library: Path, requested: str) -> str:
    """The micro-kernel ``requested`` (``auto`` or a path name) runs on this CPU; ConfigError if it cannot."""
    lib = ctypes.CDLL(str(library))
    fn = lib.edge_kernels_resolve
    fn.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
    fn.restype = ctypes.c_int
    out = ctypes.create_string_buffer(256)
    if fn(requested.encode(), out, len(out)) != 0:
        raise ConfigError(out.value.decode())
    return out.value.decode()


@dataclass(frozen=True)
class DotPeak:
    """The int8 dot-product rate of one micro-kernel path on this machine (``peak.cpp``): the instruction its
    prefill GEMM is built on (``vpdpbusd`` on zmm or ymm, ``vpmaddubsw``), back to back on every thread."""

    isa: str
    threads: int
    mac_per_s: float

    @property
    def gflop_s(self) -> float:
        """In the GEMM tables' unit: 2 FLOP per multiply-add."""
        return 2 * self.mac_per_s / 1e9


def dot_peak(setting: str | None, threads: int, seconds: float = 0.5) -> DotPeak | None:
    """Measure the int8 dot-product peak of the path ``setting`` (an ``EDGE_KERNELS`` value) chooses, on
    ``threads`` threads for ``seconds``; None where there is none to measure (``off``, no library, the scalar
    path). A forced path this CPU cannot run is a ConfigError, as in ``choose_kernels``."""
    choice = choose_kernels(setting)
    if choice.library is None or choice.isa is None:
        return None
    fn = ctypes.CDLL(str(choice.library)).edge_kernels_peak
    fn.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_double, ctypes.c_char_p, ctypes.c_size_t]
    fn.restype = ctypes.c_double
    out = ctypes.create_string_buffer(256)
    rate = fn(choice.isa.encode(), threads, seconds, out, len(out))
    return DotPeak(choice.isa, threads, rate) if rate > 0 else None


def choose_kernels(setting: str | None) -> KernelChoice:
    """The kernel path for ``setting`` (the value of ``EDGE_KERNELS``; None means ``auto``).

    ``auto`` never fails: without a usable library it answers MatMulNBits with the reason. A forced
    micro-kernel that cannot run raises ConfigError, so a test or a station that asks for one gets it or an error.
    """
    value = (setting or "auto").strip().lower()
    if value == "off":
        return KernelChoice(None, None, f"{ENV}=off")
    if value != "auto" and value not in PATHS:
        raise ConfigError(f"{ENV}={setting}: unknown kernel path; choose auto, {', '.join(PATHS)} or off")
    library = library_path()
    if library is None:
        reason = "the kernel library was not built (run scripts/ort-headers, then pip install again)"
        if value != "auto":
            raise ConfigError(f"{ENV}={setting}: {reason}")
        return KernelChoice(None, None, reason)
    try:
        isa = resolve(library, value)
    except OSError as exc:
        if value != "auto":
            raise ConfigError(f"{ENV}={setting}: cannot load {library}: {exc}") from exc
        return KernelChoice(None, None, f"cannot load {library.name}: {exc}")
    return KernelChoice(isa, library)


def our_attention(setting: str | None) -> bool:
    """Whether attention layers run our GroupAttention (``EDGE_ATTENTION``; None means ``auto``).

    Only where our kernels load (``EDGE_KERNELS`` not ``off``); ``onnxruntime`` keeps GroupQueryAttention, for
    comparisons and as a way back.
    """
    value = (setting or "auto").strip().lower()
    if value not in ("auto", "onnxruntime"):
        raise ConfigError(f"{ATTENTION_ENV}={setting}: unknown value; choose auto or onnxruntime")
    return value == "auto"


def half_kv_cache(setting: str | None, quantized: bool) -> bool:
    """Whether the fused decoder's KV cache is float16 where our attention runs (``half_kv.py``), for the value of
    ``EDGE_KV_CACHE`` (None means ``auto``): ``auto`` on a bundle with ``quantized`` decoder weights (an fp32
    bundle is the exact reference, and keeps an fp32 cache), ``float16`` always, ``float32`` never."""
    value = (setting or "auto").strip().lower()
    if value not in ("auto", *KV_CACHES):
        raise ConfigError(f"{KV_ENV}={setting}: unknown value; choose auto, {' or '.join(KV_CACHES)}")
    return value == "float16" or (value == "auto" and quantized)
