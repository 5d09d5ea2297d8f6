"""``edge fixture checkpoint --preset NAME OUT``."""

from __future__ import annotations

import argparse

PRESET_NAMES = ("tiny", "trained", "bench", "12b")


def configure(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="fixture_kind", metavar="KIND", required=True)
    c = sub.add_parser("checkpoint", help="write a gemma4_unified checkpoint folder (safetensors, config, tokenizer)")
    c.add_argument(
        "--preset",
        choices=PRESET_NAMES,
        default="tiny",
        help="tiny: tests; trained: tiny, briefly trained; bench: ~0.45B; 12b: config only",
    )
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("out", help="output folder (replaced if it exists)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edge.build.fixtures.checkpoint import write_checkpoint

    out = write_checkpoint(args.preset, Path(args.out), seed=args.seed)
    print(out)
    return 0
