"""``edge bench (BUNDLE | --preset NAME) [--quant] [--json FILE]``: speed and memory, with same-run references.

With ``--preset`` the fixture checkpoint and its bundle are built into ``--work`` first (reused
when already there; needs the export extra). With a BUNDLE, pass ``--checkpoint`` for the
PyTorch reference. The ``12b`` preset is the big-model proof: a random-weight int4 bundle at
the real shapes, written without ever materializing fp32 weights, then loaded and measured
against its memory plan.
"""

from __future__ import annotations

import argparse
import os


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("bundle", nargs="?", help="a bundle folder (or use --preset)")
    p.add_argument("--preset", choices=("tiny", "trained", "bench", "12b"), help="build and bench a fixture preset")
    p.add_argument("--quant", choices=("fp32", "int8", "int4"), default="int4", help="with --preset (default int4)")
    p.add_argument("--decoder", choices=("fused", "reference"), default="fused", help="with --preset (default fused)")
    p.add_argument("--checkpoint", help="checkpoint of BUNDLE, for the PyTorch eager reference")
    p.add_argument(
        "--work",
        default=os.path.join(
            os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "edge-inspector", "bench"
        ),
        help="where --preset builds go (default ~/.cache/edge-inspector/bench)",
    )
    p.add_argument("--rebuild", action="store_true", help="rebuild the preset's checkpoint and bundle")
    p.add_argument("--threads", type=int, default=2, help="engine threads (default 2)")
    p.add_argument("--repeats", type=int, default=3, help="repeats per figure; the median is reported (default 3)")
    p.add_argument("--contexts", default="128,1024,4096", help="decode contexts (default 128,1024,4096)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch eager reference")
    p.add_argument(
        "--sweep", action="store_true", help="instead: decode/prefill/load per thread count and onnxruntime setting"
    )
    p.add_argument(
        "--kernels",
        action="store_true",
        help="instead: onnxruntime's weight-matmul kernels on the decoder's shapes (int4 vs int8 GEMM vs fp32)",
    )
    p.add_argument(
        "--journal",
        action="store_true",
        help="instead: the event journal (throughput by durability), its cost to the gate, and the MQTT drain "
        "after an outage (needs Debian's mosquitto; works in --work)",
    )
    p.add_argument(
        "--structured",
        action="store_true",
        help="instead: only the structured row (decode with the default report schema vs unconstrained)",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="instead: onnxruntime's profile of decode steps at each of --contexts, by operator type",
    )
    p.add_argument("--block-size", type=int, help="with --preset: int4 block size (default: the recipe's 32)")
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON")


def run(args: argparse.Namespace) -> int:
    import json
    import shutil
    from dataclasses import asdict
    from pathlib import Path

    from edge.errors import ConfigError

    if args.journal:
        from edge.bench.journal import bench_journal, format_journal

        report = bench_journal(Path(args.work) / "journal")
        print(format_journal(report))
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=2))
        return 0
    contexts = tuple(int(c) for c in args.contexts.split(",") if c.strip())
    checkpoint = Path(args.checkpoint) if args.checkpoint else None
    if args.preset == "12b":
        from edge.bench.big import bench_12b, format_12b

        work = Path(args.work)
        report = bench_12b(work / "12b-int4", threads=args.threads, rebuild=args.rebuild, context=max(contexts))
        print(format_12b(report))
    else:
        if args.preset:
            from edge.build.export import ExportOptions, export_bundle
            from edge.build.fixtures.checkpoint import write_checkpoint
            from edge.build.quantize import recipe
            from edge.build.stamps import code_stamp, mark, mark_bundle, reused_bundle, stamped

            work = Path(args.work)
            checkpoint = work / f"ckpt-{args.preset}"
            bs = f"-b{args.block_size}" if args.block_size else ""
            bundle = work / f"{args.preset}-{args.quant}{bs}-{args.decoder}"
            stamp = code_stamp(args.preset)  # built by other fixture or export code: rebuilt, never reused
            if args.rebuild or not stamped(checkpoint, stamp):
                shutil.rmtree(checkpoint, ignore_errors=True)
                write_checkpoint(args.preset, checkpoint)
                mark(checkpoint, stamp)
            bundle_stamp = f"{stamp} {args.quant}{bs} {args.decoder}"
            if args.rebuild or reused_bundle(bundle, bundle_stamp) is None:
                dec = {"block_size": args.block_size} if args.block_size else {}
                rec = recipe(args.quant, decoder=dec)
                opts = ExportOptions(recipe=rec, decoder=args.decoder, parity=False, force=True)
                export_bundle(str(checkpoint), bundle, opts)
                mark_bundle(bundle, bundle_stamp)
        elif args.bundle:
            bundle = Path(args.bundle)
        else:
            raise ConfigError("give a BUNDLE folder or --preset NAME")
        from edge.bench.report import format_report
        from edge.bench.run import bench
        from edge.bench.sweep import format_sweep, sweep

        if args.kernels:
            from edge.bench.bandwidth import best_read_bandwidth
            from edge.bench.kernels import format_kernels, kernel_table
            from edge.bench.kernels_int8 import format_int8, int8_table
            from edge.bench.peak import add_peak_fractions, best_dot_peak, format_peak

            rows = kernel_table(bundle, threads=args.threads, repeats=max(args.repeats, 3))
            int8_rows = int8_table(bundle, threads=args.threads, repeats=max(args.repeats, 3))
            bandwidth = best_read_bandwidth(args.threads)
            peak = best_dot_peak(args.threads)
            add_peak_fractions(rows, peak)
            add_peak_fractions(int8_rows, peak)
            print(format_kernels(rows, bandwidth))
            print(format_peak(rows, peak))
            print(format_int8(int8_rows))
            if args.json:
                report = {"kernels": rows, "int8_kernels": int8_rows, "read_bandwidth_bytes_s": bandwidth}
                report["dot_peak"] = asdict(peak) if peak is not None else None
                Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
            return 0
        if args.profile:
            from edge.bench.profile import format_profile, profile_decode

            report = profile_decode(bundle, threads=args.threads, contexts=contexts)
            print(format_profile(report))
            if args.json:
                Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
            return 0
        if args.structured:
            from edge.bench.structured import bench_structured, format_structured_table

            report = bench_structured(bundle, threads=args.threads, repeats=args.repeats)
            print(format_structured_table(report))
            if args.json:
                Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
            return 0
        if args.sweep:
            rows = sweep(bundle, repeats=args.repeats)
            print(format_sweep(rows))
            if args.json:
                Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
            return 0
        report = bench(
            bundle,
            threads=args.threads,
            checkpoint=checkpoint,
            repeats=args.repeats,
            contexts=contexts,
            torch_reference=not args.no_torch,
        )
        print(format_report(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=float) + "\n")
    return 0
