"""The machine's int8 dot-product peak as a same-run ceiling for the prefill, as the read bandwidth is for decode.

``edge bench --kernels`` reads every prefill GEMM against it (ours and MLAS's int8 GEMM), ``edge bench`` the
whole prefill (its decoder multiply-adds per token times tok/s), and the 12B proof turns it into a floor under
the image prompt's time to first token. The figure is the instruction each GEMM path is built on, issued back to
back by ``edge_kernels_peak`` (``edge/kernels/src/peak.cpp``) on as many threads as the engine runs.
"""

from __future__ import annotations

import os
from typing import Any

from edge.kernels.library import ENV, DotPeak, dot_peak


def best_dot_peak(threads: int, runs: int = 3, kernels: str | None = None) -> DotPeak | None:
    """The int8 dot-product peak of the path this run's kernels take (``EDGE_KERNELS`` when ``kernels`` is None),
    best of ``runs``: the ceiling a prefill GEMM's GFLOP/s is read against, as the GEMV's bytes/s against the
    read bandwidth. None where there is none (``off``, no library, the scalar path)."""
    setting = os.environ.get(ENV) if kernels is None else kernels
    peaks = [p for p in (dot_peak(setting, threads) for _ in range(runs)) if p is not None]
    return max(peaks, key=lambda p: p.mac_per_s) if peaks else None


def add_peak_fractions(rows: list[dict[str, Any]], peak: DotPeak | None) -> None:
    """Each row's prefill GFLOP/s as a fraction of ``peak`` (ours and MLAS's int8 GEMM), in place."""
    if peak is None:
        return
    for r in rows:
        for key in ("edge", "int8"):
            if f"{key}_gflop_s" in r:
                r[f"{key}_peak_fraction"] = r[f"{key}_gflop_s"] / peak.gflop_s


def format_peak(rows: list[dict[str, Any]], peak: DotPeak | None) -> str:
    """One line: the peak and where the prefill GEMMs stand against it."""
    if peak is None:
        return "  int8 dot-product peak: none to measure on this path"
    threads = f"{peak.threads} thread{'s' if peak.threads != 1 else ''}"
    line = f"  int8 dot-product peak ({peak.isa}, {threads}, same run): {peak.gflop_s:.0f} GFLOP/s"
    for key, name in (("edge", "ours"), ("int8", "MLAS int8")):
        shares = [r[f"{key}_peak_fraction"] for r in rows if f"{key}_peak_fraction" in r]
        if shares:
            line += f"; {name} {min(shares):.0%}–{max(shares):.0%}"
    return line + " of it at prefill" if rows else line
