"""``edge run BUNDLE --prompt … [--image F] [--audio F] [--schema FILE|default]``: stream one answer to stdout.

With ``--schema`` the answer is a JSON document of that schema (``default``: the built-in inspection
report); the validated report is printed last, or why there is none (exit 6).
"""

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
    p.add_argument(
        "--schema",
        metavar="FILE|default",
        help="answer as JSON constrained to this JSON Schema file; 'default' = the built-in inspection report",
    )
    p.add_argument(
        "--defect-types", default=None, help="with --schema default: the defect_type values, comma-separated"
    )


def run(args: argparse.Namespace) -> int:
    import sys

    from edge.cli.safe_text import for_stream
    from edge.runtime.engine import Engine, GenerationParams
    from edge.runtime.sampling import SamplingParams

    text = schema_text(args.schema, args.defect_types) if args.schema else None  # a bad file fails before loading
    engine = Engine.load(args.bundle, threads=args.threads, verify=not args.no_verify)
    schema = engine.compile_schema(text) if text is not None else None
    default_tokens = engine.defaults.max_new_tokens
    if schema is not None:
        from edge.station.report import DEFAULT_REPORT_TOKENS

        default_tokens = max(default_tokens, DEFAULT_REPORT_TOKENS)
    params = GenerationParams(
        max_new_tokens=args.max_new_tokens or default_tokens,
        sampling=SamplingParams(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, seed=args.seed),
        schema=schema,
    )
    prepared = engine.prepare(
        args.prompt, args.image, args.audio, system=args.system, max_soft_tokens=args.max_soft_tokens
    )
    show = for_stream(sys.stdout)  # control characters escaped on a terminal, bytes unchanged in a pipe
    code = 0
    for chunk in engine.stream(prepared, params=params):
        if chunk.done and chunk.result is not None:
            print(show(chunk.text), flush=True)
            if args.timings:
                print_timings(chunk.result, sys.stderr)
            if schema is not None and chunk.result.report is None:
                print(f"edge run: no report: {chunk.result.report_error}", file=sys.stderr)
                code = 6
        else:
            print(show(chunk.text), end="", flush=True)
    return code


def schema_text(schema: str, defect_types: str | None) -> str:
    """The JSON Schema text ``--schema`` names: a file, or ``default`` for the built-in inspection report."""
    import json
    from pathlib import Path

    from edge.errors import ConfigError
    from edge.station.report import DEFAULT_DEFECTS, default_report_schema

    if schema == "default":
        kinds = defect_types.split(",") if defect_types else list(DEFAULT_DEFECTS)
        return json.dumps(default_report_schema(kinds))
    try:
        return Path(schema).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--schema {schema}: cannot read the schema file ({exc})") from None


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
