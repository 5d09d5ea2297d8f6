"""``edge fidelity CKPT``: compare quantization recipes (size, logit cosine, greedy agreement)."""

from __future__ import annotations

import argparse


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="checkpoint folder; use the trained preset, not random weights")
    p.add_argument("--recipe", action="append", help="only this recipe (repeatable); default: the whole grid")
    p.add_argument("--json", help="also write the figures to this file")
    p.add_argument("--threads", type=int)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edge.build.fidelity import compare, format_rows, write_json

    rows = compare(Path(args.checkpoint), args.recipe, threads=args.threads)
    print(format_rows(rows))
    if args.json:
        write_json(rows, Path(args.json), {"checkpoint": args.checkpoint})
    return 0
