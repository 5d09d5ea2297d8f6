"""``edge``: one console script; each subcommand's heavy imports happen only when it runs.

Subcommand modules in this package define ``configure(parser)`` (cheap, stdlib only)
and ``run(args) -> int``; torch, transformers and onnxruntime are imported inside
``run``, so ``edge --help`` and ``edge <cmd> --help`` stay instant.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from edge import LOG_FORMAT, __version__
from edge.errors import EdgeError

COMMANDS = {
    "fixture": (
        "edge.cli.fixture_cmd",
        "build local random-weight checkpoints, and the generated inspection data set, for tests, demo and benchmarks",
    ),
    "export": ("edge.cli.export_cmd", "export a Gemma 4 checkpoint to a verified ONNX bundle (build host)"),
    "verify": ("edge.cli.verify_cmd", "check every file of a bundle against its manifest"),
    "plan": (
        "edge.cli.plan_cmd",
        "print the memory plan of a model at a context length, from its config alone",
    ),
    "fidelity": ("edge.cli.fidelity_cmd", "compare quantization recipes on a checkpoint (use the trained preset)"),
    "run": ("edge.cli.run_cmd", "run one prompt (text, image, audio) through a bundle and stream the answer"),
    "serve": ("edge.cli.serve_cmd", "run the station daemon: gRPC API, health, reflection and Prometheus metrics"),
    "cameras": (
        "edge.cli.cameras_cmd",
        "check a camera before configuring it: resolution, codec, fps, first-frame latency, one saved frame",
    ),
    "describe": ("edge.cli.describe_cmd", "send an image and/or audio clip to a running daemon and print the answer"),
    "events": (
        "edge.cli.events_cmd",
        "list or follow a daemon's journaled decisions, and save their evidence (frames, maps, audio, reports)",
    ),
    "gate": ("edge.cli.gate_cmd", "fit, verify and evaluate anomaly gates (image and sound) from good samples"),
    "bench": (
        "edge.cli.bench_cmd",
        "measure decode, prefill, time to first token, frames/s, load and RSS against same-run references",
    ),
    "demo": (
        "edge.cli.demo_cmd",
        "build the tiny model, export it to int4, verify it and describe an image + audio",
    ),
}

EXTRA_HINT = (
    "this command runs on the build host and needs the export extra:\n"
    "  pip install torch==2.13.0 && pip install 'edge-inspector[export]'"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edge", description="edge-inspector: Gemma 4 on inspection stations.")
    parser.add_argument("--version", action="version", version=f"edge-inspector {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        mod = importlib.import_module(module)
        mod.configure(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format=LOG_FORMAT,
        stream=sys.stderr,
    )
    for noisy in ("httpx", "urllib3", "filelock", "huggingface_hub", "transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except EdgeError as exc:
        # one line whatever the message holds (an onnxruntime error can span several): logs and scripts read one
        message = "; ".join(part.strip() for part in str(exc).splitlines() if part.strip())
        print(f"edge {args.command}: error: {message}", file=sys.stderr)
        return exc.exit_code
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in ("torch", "transformers", "safetensors", "onnxscript", "onnx_ir"):
            print(f"edge {args.command}: error: missing module {exc.name!r}; {EXTRA_HINT}", file=sys.stderr)
            return 2
        raise
    except KeyboardInterrupt:
        print(f"edge {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
