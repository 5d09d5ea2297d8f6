"""``edge demo``: tiny checkpoint → int4 bundle → verify → describe one image + audio clip."""

from __future__ import annotations

import argparse


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workdir", default="demo", help="where the checkpoint, bundle and inputs go (default ./demo)")
    p.add_argument(
        "--preset",
        choices=("tiny", "trained"),
        default="tiny",
        help="tiny (seconds, random weights) or trained (about a minute, corpus-like answers)",
    )
    p.add_argument("--quant", choices=("fp32", "int8", "int4"), default="int4")
    p.add_argument("--max-new-tokens", type=int, default=48)


def run(args: argparse.Namespace) -> int:
    import sys
    import time
    import wave
    from pathlib import Path

    import cv2
    import numpy as np

    from edge.build.export import ExportOptions, export_bundle
    from edge.build.fixtures.checkpoint import write_checkpoint
    from edge.build.parity import synthetic_audio, synthetic_image
    from edge.build.quantize import recipe
    from edge.bundle.memory import format_plan
    from edge.bundle.verify import verify_bundle
    from edge.cli.run_cmd import print_timings
    from edge.runtime.engine import Engine, GenerationParams

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    step = lambda msg: print(f"\n== {msg}", flush=True)  # noqa: E731

    step(f"1/4 build the {args.preset} Gemma 4 checkpoint (random weights, local, no download)")
    t0 = time.perf_counter()
    ckpt = write_checkpoint(args.preset, work / f"{args.preset}-checkpoint")
    print(f"{ckpt} in {time.perf_counter() - t0:.1f} s")

    step(f"2/4 export it to an {args.quant} bundle, with parity against transformers")
    bundle = work / f"{args.preset}-{args.quant}-bundle"
    m = export_bundle(str(ckpt), bundle, ExportOptions(recipe=recipe(args.quant), context=2048, force=True))
    if args.preset == "tiny" and args.quant != "fp32":
        print("  (random weights: their int4-vs-fp32 agreement means nothing; the README's fidelity table uses the")
        print("   trained preset. The fp32 export of the same model is token-identical to transformers.)")
    for c in m["parity"].get("cases", []):
        status = "tokens equal" if c["tokens_equal"] else f"first divergence at token {c['first_divergence']}"
        print(f"  parity {c['case']:<12} {status:<32} logit cosine {c['logits_cosine']:.5f}")
    print(format_plan(m["memory_plan"], assumptions=False))

    step("3/4 verify every byte of the bundle against its manifest")
    manifest = verify_bundle(bundle)
    print(f"OK: bundle {manifest.bundle_id}, {len(manifest.files)} files")

    step("4/4 describe a camera frame (JPEG) and a microphone clip (WAV)")
    jpg = work / "frame.jpg"
    cv2.imwrite(str(jpg), cv2.cvtColor(synthetic_image(480, 640), cv2.COLOR_RGB2BGR))
    wav = work / "clip.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes((np.clip(synthetic_audio(2.0), -1, 1) * 32767).astype("<i2").tobytes())
    engine = Engine.load(bundle)
    prompt = "Describe any defect in this part."
    print(f"prompt: {prompt!r} + {jpg.name} + {wav.name}\nanswer: ", end="", flush=True)
    for chunk in engine.stream(
        prompt, images=[jpg], audio=[wav], params=GenerationParams(max_new_tokens=args.max_new_tokens)
    ):
        if chunk.done and chunk.result is not None:
            print(chunk.text)
            print_timings(chunk.result, sys.stdout)
        else:
            print(chunk.text, end="", flush=True)
    return 0
