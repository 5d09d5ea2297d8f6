"""``edge demo``: tiny checkpoint → int4 bundle → verify → daemon → describe a frame + audio over gRPC → stop.

Each step says what it does before its output, long steps show progress, and everything is written to
``--workdir`` (``./demo``), which the demo names at the start and at the end.
"""

from __future__ import annotations

import argparse
import textwrap

PRESETS = {
    "tiny": (
        "Gemma 4 12B's architecture at toy size (6 layers, hidden 64) with RANDOM weights: every step takes\n"
        "seconds, and the answer at the end is gibberish, which is expected. `./scripts/demo --preset trained`\n"
        "trains the same model for 1-3 minutes first, so that its answers read like inspection reports."
    ),
    "trained": (
        "Gemma 4 12B's architecture at toy size (6 layers, hidden 64), trained here for 1,200 steps on generated\n"
        "inspection reports whose images and sounds encode the defect: 1-3 minutes on two idle cores, longer on a\n"
        "busy machine (progress below)."
    ),
}
PARITY = {
    "random": (
        "With random weights int4 cannot agree with fp32: there is no structure for the rounding to keep, so\n"
        "every case diverges at once. That is expected here. The fp32 export of this model matches transformers\n"
        "token for token (the tests check it), and `--preset trained` shows what int4 keeps of a trained model."
    ),
    "quantized": (
        "int4 against transformers fp32 on the same inputs: how many of the 32 greedy tokens agree, and the\n"
        "cosine of the first step's logits (1.0 = identical)."
    ),
    "fp32": "fp32 must match transformers token for token: a difference would have stopped the export (exit 5).",
}


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workdir", default="demo", help="where the checkpoint, bundle and inputs go (default ./demo)")
    p.add_argument(
        "--preset",
        choices=("tiny", "trained"),
        default="tiny",
        help="tiny (seconds, random weights) or trained (1-3 minutes of training, corpus-like answers)",
    )
    p.add_argument("--quant", choices=("fp32", "int8", "int4"), default="int4")
    p.add_argument("--max-new-tokens", type=int, default=48)


def run(args: argparse.Namespace) -> int:
    import logging
    import time
    from pathlib import Path

    from edge.build.export import ExportOptions, export_bundle
    from edge.build.fixtures.checkpoint import write_checkpoint
    from edge.build.quantize import recipe
    from edge.bundle.memory import format_plan
    from edge.bundle.verify import verify_bundle
    from edge.cli.demo_daemon import describe_over_grpc

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    _plain_build_logs()
    say = Narrator()
    print(
        f"edge-inspector demo: the whole path on a {args.preset} Gemma 4, on this machine; nothing is downloaded.\n"
        f"Everything it writes goes to {work.resolve()}/ (checkpoint, bundle, frame, clip)."
    )

    say.step(f"build the {args.preset} Gemma 4 checkpoint", PRESETS[args.preset])
    t0 = time.perf_counter()
    ckpt = write_checkpoint(args.preset, work / f"{args.preset}-checkpoint")
    say.result(f"wrote {ckpt} in {time.perf_counter() - t0:.1f} s")

    say.step(
        f"export it to an {args.quant} ONNX bundle and check it against transformers (PyTorch)",
        "One ONNX graph per modality (token embedding, vision, audio, decoder), weights quantized on the way,\n"
        "then five fixed cases (text, image, audio, image + audio, a prompt longer than the sliding window) run\n"
        "through the bundle and through transformers, 32 greedy tokens each.",
    )
    bundle = work / f"{args.preset}-{args.quant}-bundle"
    t0 = time.perf_counter()
    m = export_bundle(str(ckpt), bundle, ExportOptions(recipe=recipe(args.quant), context=2048, force=True))
    size = sum(int(f["size"]) for f in m["files"].values())
    say.result(f"wrote {bundle} ({size / 2**20:.1f} MiB, {len(m['files'])} files) in {time.perf_counter() - t0:.1f} s")
    kind = "fp32" if args.quant == "fp32" else "random" if args.preset == "tiny" else "quantized"
    say.note(PARITY[kind])
    for c in m["parity"].get("cases", []):
        agree = c["first_divergence"] if c["first_divergence"] is not None else len(c["reference_tokens"])
        say.result(
            f"parity {c['case']:<12} {agree:>2}/{len(c['reference_tokens'])} tokens equal   "
            f"first-step logit cosine {c['logits_cosine']:.5f}"
        )
    say.note("The memory plan stored in the manifest: what this bundle needs on a 16 GiB station at context 2048.")
    say.result(format_plan(m["memory_plan"], assumptions=False))

    say.step(
        "verify every byte of the bundle against its manifest",
        "What a station does before it loads a bundle: each file's size and sha256 against manifest.json.",
    )
    verified = verify_bundle(bundle)
    say.result(f"OK: bundle {verified.bundle_id}, {len(verified.files)} files match")

    code = describe_over_grpc(bundle, work, args.max_new_tokens, say, random_weights=args.preset == "tiny")
    print(
        f"\nDone. Everything is in {work.resolve()}/:\n"
        f"  {ckpt.name}/  the Gemma 4 checkpoint (safetensors, config, tokenizer)\n"
        f"  {bundle.name}/  the bundle a station runs (ONNX graphs, tokenizer, manifest.json)\n"
        "  frame.jpg, clip.wav  the inputs sent to the daemon\n"
        "Try next (after `. .venv/bin/activate`):\n"
        f'  edge run {bundle} --prompt "Describe any defect." --image {work / "frame.jpg"} '
        f"--audio {work / 'clip.wav'}\n"
        f"  edge serve --bundle {bundle} --listen 127.0.0.1:50051     # and in another shell:\n"
        f"  edge describe --target 127.0.0.1:50051 --image {work / 'frame.jpg'}",
        flush=True,
    )
    logging.getLogger("edge.build").handlers.clear()
    return code


class Narrator:
    """Numbered steps, each explained before its output; results and notes indented under it."""

    STEPS = 5

    def __init__(self) -> None:
        self.n = 0

    def step(self, title: str, explanation: str = "") -> None:
        self.n += 1
        print(f"\n== {self.n}/{self.STEPS} {title}", flush=True)
        if explanation:
            self.note(explanation)

    def note(self, text: str) -> None:
        """One paragraph, re-wrapped to the width of the results (line breaks in ``text`` do not matter)."""
        print(textwrap.fill(" ".join(text.split()), 108, initial_indent="   ", subsequent_indent="   "), flush=True)

    def result(self, text: str) -> None:
        print("\n".join(f"   > {line}" for line in text.splitlines()), flush=True)


def _plain_build_logs() -> None:
    """The build steps' progress lines (training, export, parity) go to stdout, indented, without timestamps."""
    import logging
    import sys

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("   ~ %(message)s"))
    build = logging.getLogger("edge.build")
    build.handlers[:] = [handler]
    build.propagate = False
    build.setLevel(logging.INFO)
