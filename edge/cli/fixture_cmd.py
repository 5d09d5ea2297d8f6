"""``edge fixture checkpoint --preset NAME OUT`` and ``edge fixture dataset OUT``."""

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
    d = sub.add_parser(
        "dataset",
        help="write the generated inspection data set (MVTec AD layout: parts with defects and masks; machine sounds)",
    )
    d.add_argument(
        "--size",
        choices=("default", "small"),
        default="default",
        help="default: 640x480, 100 + 100 good and 15 per defect kind; small: 320x240, for tests",
    )
    d.add_argument("--small", dest="size", action="store_const", const="small", help="same as --size small")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("out", help="output folder (replaced if it holds a data set written by this command)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    if args.fixture_kind == "dataset":
        from edge.dataset.writer import write_dataset

        meta = write_dataset(Path(args.out), args.size, args.seed)
        size = f"{meta['width']}x{meta['height']}"
        print(f"{args.out}: {len(meta['frames'])} frames ({size}) and machine sounds, seed {args.seed}")
        return 0
    from edge.build.fixtures.checkpoint import write_checkpoint

    out = write_checkpoint(args.preset, Path(args.out), seed=args.seed)
    print(out)
    return 0
