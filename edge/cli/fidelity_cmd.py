"""``edge fidelity CKPT``: compare quantization recipes (size, logit cosine, greedy agreement).

``edge fidelity --report-agreement BUNDLE``: instead, how often a structured report's ``defect_type`` agrees
with the free-text answer's defect on the trained preset's corpus samples (``edge.build.report_agreement``).
"""

from __future__ import annotations

import argparse


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", nargs="?", help="checkpoint folder; use the trained preset, not random weights")
    p.add_argument("--recipe", action="append", help="only this recipe (repeatable); default: the whole grid")
    p.add_argument("--json", help="also write the figures to this file")
    p.add_argument("--threads", type=int)
    p.add_argument(
        "--report-agreement",
        metavar="BUNDLE",
        help="instead: structured report vs free text on corpus samples, with this bundle of the trained preset",
    )
    p.add_argument("--samples", type=int, default=80, help="with --report-agreement (default 80)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edge.errors import ConfigError

    if args.report_agreement:
        return _report_agreement(args)
    if not args.checkpoint:
        raise ConfigError("give a CHECKPOINT folder (or --report-agreement BUNDLE)")
    from edge.build.fidelity import compare, format_rows, write_json

    rows = compare(Path(args.checkpoint), args.recipe, threads=args.threads)
    print(format_rows(rows))
    if args.json:
        write_json(rows, Path(args.json), {"checkpoint": args.checkpoint})
    return 0


def _report_agreement(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from edge.build.report_agreement import format_agreement, measure_agreement
    from edge.runtime.engine import Engine

    engine = Engine.load(Path(args.report_agreement), threads=args.threads)
    result = measure_agreement(engine, samples=args.samples)
    print(format_agreement(result))
    if args.json:
        Path(args.json).write_text(json.dumps({"bundle": args.report_agreement, **result}, indent=2) + "\n")
    return 0
