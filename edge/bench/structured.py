"""``edge bench``'s structured row: decode tok/s under the built-in report schema against unconstrained decoding.

Each constrained run (greedy, the station's default inspection report) is paired with an unconstrained run of
the same prompt and the same number of new tokens, so both decode at the same contexts; the pairs run in ABBA
order within one process run (at least 7), and the figure is the ratio of the two medians. The time the decode
loop waits for the grammar (the token mask, sampling under it, following the chosen token) is reported too,
so a ratio below target says where the time went.
"""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path
from typing import Any

from edge.station.report import DEFAULT_REPORT_TOKENS, default_report_schema

PROMPT = "Report the defect as JSON."
TARGET = 0.95  # issue 12: decode tok/s with the default schema >= 0.95x unconstrained
MIN_PAIRS = 7  # a few seconds each on the bench preset; fewer leave the ratio at the mercy of a shared machine


def structured_decode(engine: Any, repeats: int) -> dict[str, Any]:
    """Median decode tok/s with the default report schema and without, same prompt and token count, same run."""
    from edge.runtime.engine import GenerationParams

    schema = engine.compile_schema(json.dumps(default_report_schema()))
    prompt = engine.prepare(PROMPT)
    constrained = GenerationParams(max_new_tokens=DEFAULT_REPORT_TOKENS, schema=schema)
    first = engine.generate(prompt, params=constrained)  # warm-up, and the token count to match
    n = first.timings.new_tokens
    free = GenerationParams(max_new_tokens=n, min_new_tokens=n)
    engine.generate(prompt, params=free)
    with_schema: list[Any] = []
    without: list[Any] = []
    for i in range(max(repeats, MIN_PAIRS)):
        # ABBA order: a machine getting busier or quieter during the run does not favour either side
        order = ((with_schema, constrained), (without, free))
        for runs, params in order if i % 2 == 0 else order[::-1]:
            runs.append(engine.generate(prompt, params=params).timings)
    rate = statistics.median(t.decode_tok_s for t in with_schema)
    reference = statistics.median(t.decode_tok_s for t in without)
    grammar = statistics.median(t.grammar_s / t.decode_s for t in with_schema if t.decode_s > 0)
    return {
        "schema": "default inspection report",
        "new_tokens": n,
        "report_complete": first.report is not None,
        "decode_tok_s": rate,
        "unconstrained_decode_tok_s": reference,
        "ratio": rate / reference if reference else None,
        # each constrained run against its unconstrained partner: steadier on a busy machine
        "paired_ratio": statistics.median(
            a.decode_tok_s / b.decode_tok_s for a, b in zip(with_schema, without, strict=True)
        ),
        "grammar_s_per_token": statistics.median(t.grammar_s / max(t.new_tokens, 1) for t in with_schema),
        "grammar_fraction": grammar,
        "target": TARGET,
    }


def bench_structured(bundle: Path, threads: int, repeats: int) -> dict[str, Any]:
    """``edge bench --structured``: the structured row alone (load the bundle, measure, note the machine's load)."""
    from edge.runtime.engine import Engine

    engine = Engine.load(bundle, threads=threads, verify=False)
    load = os.getloadavg()[0]
    out = structured_decode(engine, repeats)
    return {
        "bundle": engine.manifest.bundle_id,
        "threads": threads,
        "repeats": repeats,
        "load_average": load,
        "load_average_after": os.getloadavg()[0],
        "structured": out,
    }


def format_structured_table(report: dict[str, Any]) -> str:
    name, value, note = format_structured(report["structured"])
    load = f"load avg {report['load_average']:.2f} → {report['load_average_after']:.2f}"
    return f"  bundle {report['bundle']}, {report['threads']} threads, {load}\n  {name}  {value}  {note}"


def format_structured(s: dict[str, Any]) -> tuple[str, str, str]:
    """The ``structured`` row of the bench table: (name, value, note)."""
    return (
        "structured (default report schema)",
        f"{s['decode_tok_s']:.1f} tok/s",
        f"{s['ratio']:.3f}× unconstrained ({s['unconstrained_decode_tok_s']:.1f} tok/s, {s['new_tokens']} tokens; "
        f"paired {s['paired_ratio']:.3f}×); "
        f"grammar {s['grammar_s_per_token'] * 1e3:.2f} ms/token ({s['grammar_fraction']:.1%}); target ≥ {TARGET}×",
    )
