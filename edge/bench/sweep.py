"""``edge bench --sweep``: decode, prefill, load and RSS per engine thread count and onnxruntime setting."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from edge.bench.run import decode_rate, prefill_rate, rss_bytes

log = logging.getLogger("edge.bench")

SWEEP = {
    "default": {},
    "no spinning": {"session.intra_op.allow_spinning": "0"},
    "no arena": {"arena": "0"},
    "parallel prepack": {"session.prepack.enable_parallel": "1"},
}


def sweep(bundle: Path, threads_options: tuple[int, ...] = (1, 2), repeats: int = 3) -> list[dict[str, Any]]:
    """Decode at context 128, a 512-token prefill, load time and RSS per thread count and session setting."""
    rows = []
    for threads in threads_options:
        for name, tuning in SWEEP.items():
            if threads == 1 and name != "default":
                continue
            rows.append({"threads": threads, "setting": name, **_sweep_one(bundle, threads, tuning, repeats)})
            log.info("sweep %s", rows[-1])
    return rows


def _sweep_one(bundle: Path, threads: int, tuning: dict[str, str], repeats: int) -> dict[str, float]:
    from edge.runtime.engine import Engine

    t0 = time.perf_counter()
    engine = Engine.load(bundle, threads=threads, verify=False, tuning=tuning)
    load_s = time.perf_counter() - t0
    return {
        "decode_tok_s": decode_rate(engine, 128, repeats),
        "prefill_tok_s": prefill_rate(engine, repeats),
        "load_s": load_s,
        "rss_bytes": float(rss_bytes()[0]),
    }


def format_sweep(rows: list[dict[str, Any]]) -> str:
    lines = [f"  {'threads':>7}  {'setting':<18} {'decode tok/s':>12} {'prefill tok/s':>13} {'load s':>7}"]
    for r in rows:
        lines.append(
            f"  {r['threads']:>7}  {r['setting']:<18} {r['decode_tok_s']:>12.1f} {r['prefill_tok_s']:>13.0f} "
            f"{r['load_s']:>7.2f}"
        )
    return "\n".join(lines)
