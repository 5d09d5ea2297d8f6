"""The machine's int8 dot-product peak as a same-run ceiling for the prefill, as the read bandwidth is for decode.

``edge bench --kernels`` reads every prefill GEMM against it (ours and MLAS's int8 GEMM), ``edge bench`` the
whole prefill (its decoder multiply-adds per token times tok/s), and the 12B proof turns it into a floor under
the image prompt's time to first token. The figure is the instruction each GEMM path is built on, issued back to
back by ``edge_kernels_peak`` (``edge/kernels/src/peak.cpp``) on as many threads as the engine runs.
"""

from __future__ import annotations

import os
from dataclasses import asdict
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


def speed_ceilings(manifest: Any, plan: dict[str, Any], threads: int) -> dict[str, Any]:
    """This machine's ceilings for a bundle (``edge plan BUNDLE --speed``), measured now: decode can stream the
    decoder's weights no faster than the read bandwidth, and a prompt's prefill can do its decoder multiply-adds
    no faster than the int8 peak of the kernel path this station runs. The image floor is for an image at the
    bundle's maximum of soft tokens (``max_soft_tokens``; an image of another aspect ratio may get fewer) and
    counts nothing else, so a real prompt, with its text, its attention and its vision encoder, takes longer.
    Bounds for sizing a station, not predictions."""
    from edge.bench.bandwidth import best_read_bandwidth
    from edge.bundle.recipe import decoder_macs_per_position, weight_matmuls

    peak = best_dot_peak(threads)
    bandwidth = best_read_bandwidth(threads)
    macs = decoder_macs_per_position(weight_matmuls(manifest.extra) or [])
    soft = int(manifest.processor.get("max_soft_tokens", 0) or 0)
    out: dict[str, Any] = {
        "threads": threads,
        "read_bandwidth_bytes_s": bandwidth,
        "dot_peak": asdict(peak) if peak is not None else None,
        "decoder_macs_per_position": macs,
        "decode_ceiling_tok_s": bandwidth / plan["read_per_token_bytes"] if plan["read_per_token_bytes"] else None,
        "prefill_ceiling_tok_s": None,
        "image_soft_tokens": soft,
        "image_ttft_floor_s": None,
    }
    if peak is not None and macs:
        out["prefill_ceiling_tok_s"] = peak.mac_per_s / macs
        out["image_ttft_floor_s"] = soft * macs / peak.mac_per_s if soft else None
    return out


def format_speed(s: dict[str, Any]) -> str:
    """The ceilings as lines under the memory plan."""
    threads = f"{s['threads']} thread{'s' if s['threads'] != 1 else ''}"
    lines = [f"speed ceilings on this machine ({threads}, measured now; real runs stay below them):"]
    lines.append(f"  read bandwidth          {s['read_bandwidth_bytes_s'] / 1e9:.1f} GB/s (best of 3)")
    if s["decode_ceiling_tok_s"] is not None:
        rate = s["decode_ceiling_tok_s"]
        lines.append(f"  decode                  ≤ {rate:.1f} tok/s (the decoder's weights once a token)")
    peak = s["dot_peak"]
    if peak is None or s["prefill_ceiling_tok_s"] is None:
        lines.append("  prefill                 no int8 dot product to measure on this kernel path")
        return "\n".join(lines)
    lines.append(f"  int8 peak               {2 * peak['mac_per_s'] / 1e9:.0f} GFLOP/s ({peak['isa']})")
    lines.append(
        f"  prefill                 ≤ {s['prefill_ceiling_tok_s']:.1f} tok/s "
        f"({s['decoder_macs_per_position'] / 1e9:.2f} G decoder multiply-adds a token)"
    )
    if s["image_ttft_floor_s"] is not None:
        floor, soft = s["image_ttft_floor_s"], s["image_soft_tokens"]
        lines.append(f"  image TTFT              ≥ {floor:.2f} s (an image at the bundle's most, {soft} soft tokens)")
    return "\n".join(lines)
