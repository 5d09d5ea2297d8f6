"""``edge run BUNDLE --prompt … [--image F] [--audio F]``: stream one answer to stdout."""

from __future__ import annotations

import argparse


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", help="bundle folder")
    p.add_argument("--prompt", required=True, help="instruction text")
    p.add_argument("--image", action="append", default=[], help="image file (JPEG/PNG/BMP/TIFF); repeatable")
    p.add_argument("--audio", action="append", default=[], help="WAV file (PCM 8/16/24-bit or float); repeatable")
    p.add_argument("--system", help="system prompt")
    p.add_argument("--max-new-tokens", type=int, help="default: the bundle's generation default")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    p.add_argument("--top-k", type=int, default=0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--seed", type=int)
    p.add_argument("--max-soft-tokens", type=int, choices=(70, 140, 280, 560, 1120), help="image token budget")
    p.add_argument("--threads", type=int, help="onnxruntime intra-op threads")
    p.add_argument("--no-verify", action="store_true", help="skip hashing the bundle (it is verified by default)")
    p.add_argument("--timings", action="store_true", help="print timings to stderr")


def run(args: argparse.Namespace) -> int:
    import sys

    from edge.cli.safe_text import for_stream
    from edge.runtime.engine import Engine, GenerationParams
    from edge.runtime.sampling import SamplingParams

    engine = Engine.load(args.bundle, threads=args.threads, verify=not args.no_verify)
    params = GenerationParams(
        max_new_tokens=args.max_new_tokens or engine.defaults.max_new_tokens,
        sampling=SamplingParams(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, seed=args.seed),
    )
    prepared = engine.prepare(
        args.prompt, args.image, args.audio, system=args.system, max_soft_tokens=args.max_soft_tokens
    )
    show = for_stream(sys.stdout)  # control characters escaped on a terminal, bytes unchanged in a pipe
    for chunk in engine.stream(prepared, params=params):
        if chunk.done and chunk.result is not None:
            print(show(chunk.text), flush=True)
            if args.timings:
                print_timings(chunk.result, sys.stderr)
        else:
            print(show(chunk.text), end="", flush=True)
    return 0


def print_timings(result: object, stream: object) -> None:
    t = result.timings  # type: ignore[attr-defined]
    lines = [
        f"stop: {result.stop_reason}",  # type: ignore[attr-defined]
        f"prompt tokens: {t.prompt_tokens}  new tokens: {t.new_tokens}",
        f"preprocess {t.preprocess_s * 1e3:.1f} ms | embed {t.embed_s * 1e3:.1f} ms | "
        f"prefill {t.prefill_s * 1e3:.1f} ms "
        f"({t.prefill_tok_s:.0f} tok/s) | first token {t.ttft_s * 1e3:.1f} ms | decode {t.decode_tok_s:.1f} tok/s",
    ]
    print("\n".join(lines), file=stream)  # type: ignore[call-overload]
