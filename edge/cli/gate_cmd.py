"""``edge gate fit|verify|eval``: build, check and measure anomaly gates (station side, no torch)."""

from __future__ import annotations

import argparse


def configure(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="gate_command", metavar="ACTION", required=True)
    f = sub.add_parser(
        "fit",
        help="fit a gate from good samples only (variation model, sound statistics), or wrap an anomalib model.onnx",
    )
    f.add_argument("out", help="gate folder to write (must not exist, unless --force replaces a gate)")
    f.add_argument("--good", metavar="DIR", help="good images (e.g. DATA/train/good)")
    f.add_argument("--sound-good", metavar="DIR", help="WAV recordings of normal machine sound (≤ 30 s each)")
    f.add_argument("--anomalib", metavar="MODEL", help="an anomalib ONNX export to wrap (--good then calibrates it)")
    f.add_argument("--width", type=int, default=256, help="variation model working width in px (default 256)")
    f.add_argument("--input-size", metavar="HxW", help="scoring size for an anomalib graph with dynamic H×W")
    f.add_argument(
        "--register",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="registration to the reference (default: on for the variation model, off for anomalib)",
    )
    f.add_argument(
        "--illumination",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="illumination normalization (default: on for the variation model; for anomalib, as --register)",
    )
    f.add_argument("--target-far", type=float, default=0.01, help="target false-alarm rate on good (default 0.01)")
    f.add_argument("--window-seconds", type=float, default=1.0, help="sound window (default 1.0 s)")
    f.add_argument("--references", type=int, default=4, help="good frames stored for k-shot prompts (default 4)")
    f.add_argument("--force", action="store_true", help="replace an existing gate folder")
    v = sub.add_parser("verify", help="check every file of a gate folder against its manifest")
    v.add_argument("gate", help="gate folder")
    e = sub.add_parser("eval", help="image/pixel AUROC, F1, false alarms, sound AUROC, latency on one core; targets")
    e.add_argument("gate", help="gate folder")
    e.add_argument("data", help="data set in the MVTec AD layout (test/, ground_truth/; optional sound/)")
    e.add_argument("--json", metavar="FILE", help="also write the full result as JSON")
    e.add_argument("--threshold", type=float, help="evaluate at this threshold instead of the calibrated 0.5")
    e.add_argument("--no-latency", action="store_true", help="skip the latency measurement")


def run(args: argparse.Namespace) -> int:
    return {"fit": _fit, "verify": _verify, "eval": _eval}[args.gate_command](args)


def _fit(args: argparse.Namespace) -> int:
    from dataclasses import replace
    from pathlib import Path

    from edge.errors import ConfigError
    from edge.gate.fit import GateFitRequest, fit_gate
    from edge.gate.prestep import PrestepParams

    anomalib = args.anomalib is not None
    register = args.register if args.register is not None else not anomalib
    illumination = args.illumination if args.illumination is not None else (register or not anomalib)
    prestep = PrestepParams(register=register, illumination=illumination) if register or illumination else None
    size = None
    if args.input_size:
        try:
            h, w = (int(v) for v in args.input_size.lower().split("x"))
        except ValueError:
            raise ConfigError(f"--input-size {args.input_size!r}: expected HxW, e.g. 256x256") from None
        size = (h, w)
    if args.width < 32:
        raise ConfigError(f"--width {args.width}: use at least 32 px")
    req = GateFitRequest(
        good_images=Path(args.good) if args.good else None,
        good_sounds=Path(args.sound_good) if args.sound_good else None,
        anomalib_model=Path(args.anomalib) if anomalib else None,
        force=args.force,
    )
    req = replace(
        req,
        image=replace(req.image, width=args.width, prestep=prestep, target_false_alarm_rate=args.target_far,
                      references=args.references),
        anomalib=replace(req.anomalib, input_size=size, prestep=prestep, target_false_alarm_rate=args.target_far,
                         references=args.references),
        sound=replace(req.sound, window_seconds=args.window_seconds, target_false_alarm_rate=args.target_far),
    )  # fmt: skip
    m = fit_gate(Path(args.out), req)
    parts = []
    if m.image:
        cal = m.image["calibration"]
        how = f"threshold calibrated on {cal['held_out']} held-out good" if cal else "threshold frozen in the graph"
        parts.append(f"image ({m.image['source']}, {m.image['input_size'][1]}x{m.image['input_size'][0]}, {how})")
    if m.sound:
        parts.append(f"sound ({m.sound['window_seconds']:g} s windows, {m.sound['calibration']['held_out']} held out)")
    print(f"{args.out}: gate {m.gate_id}: {' + '.join(parts)}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edge.gate.manifest import verify_gate

    m = verify_gate(Path(args.gate))
    total = sum(int(f["size"]) for f in m.files.values())
    parts = [p for p in ("image" if m.image else "", "sound" if m.sound else "") if p]
    print(f"{args.gate}: OK — gate {m.gate_id}, {' + '.join(parts)}, {len(m.files)} files, {total / 2**10:.0f} KiB")
    return 0


def _eval(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from edge.gate.eval_report import format_table, run_eval

    result = run_eval(Path(args.gate), Path(args.data), args.threshold, latency=not args.no_latency)
    print(format_table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0
