"""``edge demo``: Gemma 4 checkpoint → int4 bundle → verify → gate → daemon → describe, then the inspection loop.

Each step says what it does before its output, long steps show progress, and everything is written to
``--workdir`` (``./demo``), which the demo names at the start and at the end. The checkpoint, the bundle and the
gate are kept there and reused by the next run (checked first), so only the first run trains and exports.
"""

from __future__ import annotations

import argparse
import shutil
import textwrap

PRESETS = {
    "tiny": (
        "Gemma 4 12B's architecture at toy size (6 layers, hidden 64) with RANDOM weights: every step takes\n"
        "seconds, and the answers are gibberish, which is expected. Without --preset tiny the demo trains the\n"
        "same model for 1-3 minutes first (once: the next runs reuse it), so that its answers read like reports."
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
        "cosine of the first step's logits (1.0 = identical). Greedy decoding follows its own path after the\n"
        "first token that differs (a near-tie such as two equally likely severities is enough), so a short\n"
        "count with a cosine near 1 means int4 kept the model's distribution, not that it lost the answer."
    ),
    "fp32": "fp32 must match transformers token for token: a difference would have stopped the export (exit 5).",
}


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workdir", default="demo", help="where the checkpoint, bundle and inputs go (default ./demo)")
    p.add_argument(
        "--preset",
        choices=("tiny", "trained"),
        default="trained",
        help="trained (1-3 minutes of training the first time, corpus-like answers; the default) or tiny "
        "(seconds, random weights)",
    )
    p.add_argument("--quant", choices=("fp32", "int8", "int4"), default="int4")
    p.add_argument(
        "--dataset",
        choices=("default", "small"),
        default="default",
        help="the generated data set the gate is fitted on: default (640x480, 100 good frames) or small",
    )
    p.add_argument("--max-new-tokens", type=int, default=48)


def run(args: argparse.Namespace) -> int:
    import logging
    import time
    from pathlib import Path

    from edge.build.export import ExportOptions, export_bundle
    from edge.build.fixtures.checkpoint import write_checkpoint
    from edge.build.quantize import recipe
    from edge.build.stamps import code_stamp, mark, mark_bundle, reused_bundle, stamped
    from edge.bundle.memory import format_plan
    from edge.bundle.verify import verify_bundle
    from edge.cli.demo_daemon import DaemonFailed, describe_frame_and_clip, serving, show_journal, show_metrics
    from edge.cli.demo_inspect import fit_demo_gate, inspection_loop

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    _plain_build_logs()
    say = Narrator()
    print(
        f"edge-inspector demo: the whole path on a {args.preset} Gemma 4, on this machine; nothing is downloaded.\n"
        f"Everything it writes goes to {work.resolve()}/ (checkpoint, bundle, gate, data set, frame, clip)."
    )

    say.step(f"build the {args.preset} Gemma 4 checkpoint", PRESETS[args.preset])
    t0 = time.perf_counter()
    ckpt = work / f"{args.preset}-checkpoint"
    stamp = code_stamp(args.preset)
    if stamped(ckpt, stamp):
        say.result(f"{ckpt} is already there (built by an earlier run of this version): reused")
    else:
        write_checkpoint(args.preset, ckpt)
        mark(ckpt, stamp)
        say.result(f"wrote {ckpt} in {time.perf_counter() - t0:.1f} s")

    say.step(
        f"export it to an {args.quant} ONNX bundle and check it against transformers (PyTorch)",
        "One ONNX graph per modality (token embedding, vision, audio, decoder), weights quantized on the way,\n"
        "then five fixed cases (text, image, audio, image + audio, a prompt longer than the sliding window) run\n"
        "through the bundle and through transformers, 32 greedy tokens each.",
    )
    bundle = work / f"{args.preset}-{args.quant}-bundle"
    t0 = time.perf_counter()
    m = reused_bundle(bundle, f"{stamp} {args.quant}")
    if m is None:
        m = export_bundle(str(ckpt), bundle, ExportOptions(recipe=recipe(args.quant), context=2048, force=True))
        mark_bundle(bundle, f"{stamp} {args.quant}")
        size = sum(int(f["size"]) for f in m["files"].values())
        say.result(
            f"wrote {bundle} ({size / 2**20:.1f} MiB, {len(m['files'])} files) in {time.perf_counter() - t0:.1f} s"
        )
    else:
        say.result(f"{bundle} is already there and exported from this checkpoint: reused (its parity report below)")
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

    say.step(
        "fit an anomaly gate on good parts only",
        "The model needs seconds per image; a camera sends several frames a second. The gate scores every frame\n"
        "and every second of sound in milliseconds and passes only suspects on. It is fitted here on generated\n"
        "good parts (poses and lighting vary as on a line) and good machine sound: `edge gate fit`.",
    )
    data, gate = fit_demo_gate(work, say, args.dataset)

    say.step(
        "start the daemon with the gate (edge serve --gate) and send it what a station sends",
        "The daemon verifies and loads the gate and the bundle and warms up before it reports SERVING.",
    )
    try:
        state = work / "state"  # the event journal and its evidence: this run's only
        shutil.rmtree(state, ignore_errors=True)
        extra = ("--gate", str(gate), "--state-dir", str(state), "--line-id", "demo", "--station-id", "station-1")
        with serving(bundle, say, extra) as daemon:
            describe_frame_and_clip(daemon, work, args.max_new_tokens, say, random_weights=args.preset == "tiny")
            say.step("the inspection loop: every frame scored, anomalies described")
            inspection_loop(daemon, data, say)
            say.step("the journal: every decision and its evidence, kept before it was reported")
            show_journal(daemon, state, say)
            show_metrics(daemon, say)
    except DaemonFailed as exc:
        return exc.code
    code = daemon.returncode or 0
    print(
        f"\nDone. Everything is in {work.resolve()}/ (the next run reuses what it can):\n"
        f"  {ckpt.name}/  the Gemma 4 checkpoint (safetensors, config, tokenizer)\n"
        f"  {bundle.name}/  the bundle a station runs (ONNX graphs, tokenizer, manifest.json)\n"
        f"  {gate.name}/  the anomaly gate (ONNX graph, sound model, manifest.json)\n"
        f"  {data.name}/  the generated inspection data set (MVTec AD layout)\n"
        "  state/  the event journal (journal.db) and the evidence of each decision (evidence/)\n"
        "  frame.jpg, clip.wav  the single request's inputs\n"
        "Try next (after `. .venv/bin/activate`):\n"
        f"  edge gate eval {gate} {data}\n"
        f'  edge run {bundle} --prompt "Describe any defect." --image {work / "frame.jpg"} --schema default\n'
        f"  edge serve --bundle {bundle} --gate {gate} --listen 127.0.0.1:50051     # and in another shell:\n"
        f"  edge describe --target 127.0.0.1:50051 --image {work / 'frame.jpg'} --schema default",
        flush=True,
    )
    for name in STORY_LOGGERS:
        logging.getLogger(name).handlers.clear()
    return code


class Narrator:
    """Numbered steps, each explained before its output; results and notes indented under it."""

    STEPS = 8

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


#: Loggers whose lines belong to the demo's story: the build's progress (training, export, parity), the
#: kernels the runtime chose, the gate's fitted thresholds.
STORY_LOGGERS = ("edge.build", "edge.runtime", "edge.gate")


def _plain_build_logs() -> None:
    """The story's log lines go to stdout, indented like the results, without timestamps."""
    import logging
    import sys

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("   ~ %(message)s"))
    for name in STORY_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.propagate = False
        logger.setLevel(logging.INFO)
