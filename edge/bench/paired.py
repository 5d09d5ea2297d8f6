"""Our kernels against onnxruntime's ``MatMulNBits`` on the same bundle, interleaved in one process.

The ratios are the benchmark's targets (decode ≥ 1.25× at every context), and on a shared VM the machine's
speed drifts by ±20% within minutes: two engines measured one after the other can differ by that alone. So
both engines are loaded at once and take turns, one timed call each per repeat (a decode of NEW_TOKENS
tokens, a prefill, an image TTFT: seconds each, so the other pool's brief spinning after its own call is
negligible), and each ratio is taken between medians of the same interleaved sequence.
"""

from __future__ import annotations

import functools
import statistics
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

PAIR = ("edge", "matmulnbits")  # ours (EDGE_KERNELS decides the path), then EDGE_KERNELS=off


def alternate(calls: Mapping[str, Callable[[], float]], repeats: int) -> dict[str, float]:
    """Median of each call's results, the calls taking turns ``repeats`` times."""
    results: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            results[name].append(call())
    return {name: statistics.median(values) for name, values in results.items()}


def measure_paired(bundle: Path, threads: int, repeats: int, contexts: tuple[int, ...]) -> dict[str, Any]:
    """Decode per context, prefill and image TTFT (prepared pixels) of both engines, interleaved.

    Returns MatMulNBits' figures (the reference), ours from the same sequence under ``edge``, and the ratios
    (ours ÷ MatMulNBits for rates, time ÷ time for the TTFT).
    """
    from edge.bench.run import FRAME_SIZE, QUESTION, decode_call, first_token_s, prefill_call
    from edge.runtime.engine import Engine
    from edge.runtime.sessions import BundleSessions
    from edge.samples import jpeg_bytes, part_image

    engines = {
        name: Engine(
            BundleSessions.open(bundle, threads=threads, verify=False, kernels="off" if name != "edge" else None)
        )
        for name in PAIR
    }
    decode: dict[str, dict[str, float]] = {name: {} for name in PAIR}
    for ctx in contexts:
        if ctx > engines["edge"].context:
            continue
        rates = alternate({name: decode_call(e, ctx) for name, e in engines.items()}, repeats)
        for name in PAIR:
            decode[name][str(ctx)] = rates[name]
    prefill = alternate({name: prefill_call(e) for name, e in engines.items()}, repeats)
    jpeg = jpeg_bytes(part_image(*FRAME_SIZE, seed=3))
    calls = {
        name: functools.partial(first_token_s, e, e.prepare(QUESTION, images=[jpeg])) for name, e in engines.items()
    }
    for call in calls.values():
        call()  # warm-up
    ttft = alternate(calls, repeats)
    ours = {
        "decode_tok_s_by_context": decode["edge"],
        "prefill_tok_s": prefill["edge"],
        "image_ttft_model_s": ttft["edge"],
    }
    ref = decode["matmulnbits"]
    return {
        "kernels": engines["matmulnbits"].sessions.kernels.label,
        "decode_tok_s_by_context": ref,
        "prefill_tok_s": prefill["matmulnbits"],
        "image_ttft_model_s": ttft["matmulnbits"],
        "edge": {"kernels": engines["edge"].sessions.kernels.label, **ours},
        "decode_vs_matmulnbits_by_context": {c: decode["edge"][c] / ref[c] for c in ref},
        "prefill_vs_matmulnbits": prefill["edge"] / prefill["matmulnbits"],
        "image_ttft_model_vs_matmulnbits": ttft["edge"] / ttft["matmulnbits"],
    }
