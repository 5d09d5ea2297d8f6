"""``edge bench BUNDLE --profile``: where a decode step's time goes, per operator type, at each context.

onnxruntime's own session profiler records every node run of the decoder; the last ``STEPS − 1`` runs of a
greedy generation are decode steps (one token each), and their nodes' times are summed by operator type.
Each context gets a fresh engine, so the profile holds one generation's warm-up and one measured
generation. The profiler adds some time of its own per node, so compare shares within a table, and take
speeds from ``edge bench`` proper.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from edge.bench.run import text_prompt

STEPS = 64  # new tokens per generation: the first comes from the prefill, the other 63 are decode steps
TOP = 14  # operator types shown per context


def summarize(events: list[dict[str, Any]], steps: int) -> dict[str, Any]:
    """Per operator type, milliseconds per step over the last ``steps`` session runs of a profile."""
    runs = sorted((e for e in events if e.get("name") == "model_run"), key=lambda e: e["ts"])[-steps:]
    if len(runs) < steps:
        raise ValueError(f"the profile holds {len(runs)} decoder runs, fewer than the {steps} decode steps")
    lo, hi = runs[0]["ts"], runs[-1]["ts"] + runs[-1]["dur"]
    total: Counter[str] = Counter()
    count: Counter[str] = Counter()
    for e in events:
        if e.get("cat") == "Node" and str(e.get("name", "")).endswith("_kernel_time") and lo <= e["ts"] <= hi:
            op = e.get("args", {}).get("op_name", "?")
            total[op] += e["dur"]
            count[op] += 1
    nodes_us = sum(total.values())
    rows = [
        {
            "op": op,
            "ms_per_step": us / steps / 1e3,
            "share": us / nodes_us if nodes_us else 0.0,
            "nodes_per_step": count[op] / steps,
        }
        for op, us in total.most_common()
    ]
    return {
        "run_ms": sum(r["dur"] for r in runs) / steps / 1e3,
        "nodes_ms": nodes_us / steps / 1e3,
        "ops": rows,
    }


def profile_decode(bundle: Path, threads: int, contexts: tuple[int, ...]) -> dict[str, Any]:
    """A profile of STEPS − 1 greedy decode steps ending near each context (prompt of context − STEPS)."""
    from edge.runtime.engine import Engine, GenerationParams

    out: dict[str, Any] = {"threads": threads, "steps": STEPS - 1, "contexts": {}}
    params = GenerationParams(max_new_tokens=STEPS, min_new_tokens=STEPS)
    for ctx in contexts:
        with tempfile.TemporaryDirectory(prefix="edge-profile-") as tmp:
            engine = Engine.load(bundle, threads=threads, verify=False, tuning={"profile": f"{tmp}/ort"})
            if ctx > engine.context:
                raise ValueError(f"context {ctx} is beyond the bundle's {engine.context}")
            out["kernels"] = engine.sessions.kernels.label
            out["attention_nodes"] = engine.sessions.attention_nodes
            out["kv_cache_dtype"] = engine.sessions.kv_type
            prompt = text_prompt(engine, max(ctx - STEPS, 16))
            engine.generate(prompt, params=params)  # warm-up: arena, page faults
            timings = engine.generate(prompt, params=params).timings
            path = engine.sessions.sessions["decoder"].end_profiling()
            row = summarize(json.loads(Path(path).read_text()), STEPS - 1)
            row["step_ms"] = timings.decode_s / (STEPS - 1) * 1e3
            out["contexts"][str(ctx)] = row
            del engine
    return out


def format_profile(report: dict[str, Any]) -> str:
    lines = [
        f"decode steps by operator type ({report['steps']} steps, {report['threads']} threads, {report['kernels']}, "
        f"{report['attention_nodes']} attention layers on GroupAttention, KV cache "
        f"{report.get('kv_cache_dtype', 'float32')}; profiler on)"
    ]
    for ctx, row in report["contexts"].items():
        lines.append(
            f"  context {ctx}: step {row['step_ms']:.2f} ms, decoder run {row['run_ms']:.2f} ms, "
            f"nodes {row['nodes_ms']:.2f} ms"
        )
        for op in row["ops"][:TOP]:
            lines.append(
                f"    {op['op']:36s} {op['ms_per_step']:8.3f} ms/step {100 * op['share']:5.1f}%  "
                f"{op['nodes_per_step']:.0f} per step"
            )
    return "\n".join(lines)
