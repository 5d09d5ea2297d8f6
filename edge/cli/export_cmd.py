"""``edge export SOURCE OUT [--quant fp32|int8|int4] …``."""

from __future__ import annotations

import argparse


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="local checkpoint folder (config, safetensors, tokenizer); nothing is downloaded")
    p.add_argument("out", help="bundle folder to create")
    p.add_argument("--quant", choices=("fp32", "int8", "int4"), default="int4", help="weight precision (default int4)")
    q = p.add_argument_group("int4/int8 details (defaults chosen on the trained preset; see README)")
    q.add_argument("--block-size", type=int, choices=(16, 32, 64, 128, 256), help="MatMulNBits block size (32)")
    q.add_argument("--asymmetric", action="store_true", help="use zero points (default symmetric)")
    q.add_argument(
        "--accuracy-level",
        type=int,
        choices=(0, 1, 2, 3, 4),
        help="MatMulNBits accuracy level: 4 = int8 compute (default), 0 = fp32 compute",
    )
    q.add_argument("--lm-head", choices=("fp32", "int8", "int4"), help="LM head precision (int4 default: int8)")
    q.add_argument(
        "--embedding",
        choices=("fp32", "fp16", "int8", "int4", "lm_head"),
        help="token embedding table: its own table at this precision, or lm_head = gather the tied int8 LM head's "
        "blocks (stored once)",
    )
    q.add_argument("--mm", choices=("fp32", "int8"), help="vision/audio projection precision (default int8)")
    p.add_argument(
        "--max-soft-tokens",
        type=int,
        default=280,
        choices=(70, 140, 280, 560, 1120),
        help="image soft-token budget the station uses (default 280)",
    )
    p.add_argument("--context", type=int, default=4096, help="context the memory plan is computed for (default 4096)")
    p.add_argument("--budget-gib", type=float, default=16.0, help="station memory budget in GiB (default 16)")
    p.add_argument(
        "--image-mask",
        choices=("sliding", "all"),
        default="sliding",
        help="bidirectional image-block mask: 'sliding' (Gemma 4 design) or 'all' (see README)",
    )
    p.add_argument(
        "--decoder",
        choices=("fused", "reference"),
        default="fused",
        help="decoder graph: 'fused' (onnxruntime contrib ops, KV cache in place; default) or 'reference' "
        "(plain ONNX ops, the readable definition parity is built on)",
    )
    p.add_argument(
        "--random-weights",
        action="store_true",
        help="random quantized weights at SOURCE's config shapes, generated tensor by tensor without fp32 "
        "(memory and speed work on models you cannot download; implies --no-parity)",
    )
    p.add_argument(
        "--model-id",
        metavar="ORG/NAME",
        default="",
        help="hub id the station reports (GetInfo, metrics); default: found in SOURCE (hub cache, config.json)",
    )
    p.add_argument("--model-revision", metavar="REV", default="", help="revision (commit) of --model-id")
    p.add_argument("--no-parity", action="store_true", help="skip the parity check against transformers")
    p.add_argument("--parity-tokens", type=int, default=32, help="greedy tokens compared per parity case")
    p.add_argument("--threads", type=int, help="threads for parity runs")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from edge.build.export import ExportOptions, export_bundle
    from edge.build.quantize import LinearQuant, recipe
    from edge.bundle.memory import format_plan

    overrides: dict[str, object] = {}
    dec: dict[str, object] = {}
    if args.block_size:
        dec["block_size"] = args.block_size
    if args.asymmetric:
        dec["symmetric"] = False
    if args.accuracy_level is not None:
        dec["accuracy_level"] = args.accuracy_level
    if dec:
        overrides["decoder"] = dec
    if args.lm_head:
        overrides["lm_head"] = args.lm_head
    if args.embedding:
        overrides["embedding"] = args.embedding
    if args.mm:
        mm = LinearQuant() if args.mm == "fp32" else LinearQuant("int8")
        overrides["vision"] = mm
        overrides["audio"] = mm
    rec = recipe(args.quant, **overrides)
    opts = ExportOptions(
        recipe=rec,
        max_soft_tokens=args.max_soft_tokens,
        context=args.context,
        image_mask=args.image_mask,
        decoder=args.decoder,
        parity=not (args.no_parity or args.random_weights),
        random_weights=args.random_weights,
        parity_tokens=args.parity_tokens,
        budget_bytes=int(args.budget_gib * 2**30),
        force=args.force,
        threads=args.threads,
        source_id=args.model_id,
        source_revision=args.model_revision,
    )
    m = export_bundle(args.source, Path(args.out), opts)
    size = sum(int(f["size"]) for f in m["files"].values())
    print(f"bundle {m['bundle_id']} written to {args.out} ({size / 2**20:.1f} MiB, {rec.name})")
    parity = m["parity"]
    if "cases" in parity:
        for c in parity["cases"]:
            status = "tokens equal" if c["tokens_equal"] else f"diverges at token {c['first_divergence']}"
            print(
                f"  parity {c['case']:<12} {status:<24} cosine {c['logits_cosine']:.6f}  "
                f"max|Δlogits| {c['logits_max_abs']:.2e}"
            )
    print(format_plan(m["memory_plan"], assumptions=False))
    if args.verbose:
        print(json.dumps(m["quantization"], indent=2))
    return 0
