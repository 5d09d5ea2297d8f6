"""``edge plan (SOURCE | BUNDLE | --preset NAME) [--quant] [--context] [--kernels] [--speed]``: the station memory
plan.

From shapes alone for a checkpoint or preset; from what a built bundle records for a bundle folder. With
``--speed`` (bundles only) it also measures this machine and prints the bundle's speed ceilings.
"""

from __future__ import annotations

import argparse


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", nargs="?", help="checkpoint folder, config.json or bundle folder (or use --preset)")
    p.add_argument("--preset", choices=("tiny", "trained", "bench", "12b"), help="a fixture preset's shapes")
    p.add_argument("--quant", choices=("fp32", "int8", "int4"), default="int4")
    p.add_argument("--context", type=int, default=4096)
    p.add_argument("--budget-gib", type=float, default=16.0)
    p.add_argument(
        "--decoder",
        choices=("fused", "reference"),
        default="fused",
        help="decoder graph the runtime uses (default fused)",
    )
    p.add_argument(
        "--kernels",
        choices=("edge", "matmulnbits"),
        default="edge",
        help="weight-matmul kernels the station runs: ours (default, where they load) or onnxruntime's MatMulNBits",
    )
    p.add_argument(
        "--speed",
        action="store_true",
        help="with a bundle: also measure this machine (int8 peak, read bandwidth) and print the bundle's speed "
        "ceilings (decode tok/s, prefill tok/s, an image prompt's TTFT floor)",
    )
    p.add_argument("--threads", type=int, default=2, help="with --speed: the engine's threads (default 2)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from edge.build.quantize import recipe
    from edge.bundle.memory import format_plan, plan_for_bundle, plan_memory
    from edge.errors import ConfigError
    from edge.spec import ModelSpec

    if args.source and (Path(args.source) / "manifest.json").is_file():
        from edge.bundle.manifest import load_manifest

        manifest = load_manifest(Path(args.source))
        plan = plan_for_bundle(manifest, kernels=args.kernels, context=args.context)
        text = format_plan(plan)
        if args.speed:
            from edge.bench.peak import format_speed, speed_ceilings

            plan["speed"] = speed_ceilings(manifest, plan, args.threads)
            text += "\n" + format_speed(plan["speed"])
        print(json.dumps(plan, indent=2) if args.json else text)
        return 0
    if args.speed:
        raise ConfigError("--speed needs a built bundle: its recorded weight matmuls set the multiply-adds a token")
    if args.preset:
        from edge.build.fixtures.presets import PRESETS, REAL_TOKEN_IDS, hf_config

        config = hf_config(PRESETS[args.preset], REAL_TOKEN_IDS)
    elif args.source:
        path = Path(args.source)
        path = path / "config.json" if path.is_dir() else path
        try:
            config = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: cannot read a config.json ({exc})") from exc
    else:
        raise ConfigError("give a checkpoint folder or --preset")
    spec = ModelSpec.from_hf_config(config)
    plan = plan_memory(
        spec,
        context=args.context,
        recipe=recipe(args.quant),
        kernels=args.kernels,
        budget_bytes=int(args.budget_gib * 2**30),
        decoder=args.decoder,
    )
    print(json.dumps(plan, indent=2) if args.json else format_plan(plan))
    return 0
