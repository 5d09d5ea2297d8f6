"""``edge demo``: tiny checkpoint → int4 bundle → verify → daemon → describe a frame + audio over gRPC → stop."""

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
    import re
    import signal
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    import grpc

    from edge import samples
    from edge.build.export import ExportOptions, export_bundle
    from edge.build.fixtures.checkpoint import write_checkpoint
    from edge.build.quantize import recipe
    from edge.bundle.memory import format_plan
    from edge.bundle.verify import verify_bundle
    from edge.client import describe
    from edge.v1 import inspector_pb2 as pb
    from edge.v1 import inspector_pb2_grpc as pb_grpc

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    step = lambda msg: print(f"\n== {msg}", flush=True)  # noqa: E731

    step(f"1/5 build the {args.preset} Gemma 4 checkpoint (local random weights, nothing downloaded)")
    t0 = time.perf_counter()
    ckpt = write_checkpoint(args.preset, work / f"{args.preset}-checkpoint")
    print(f"{ckpt} in {time.perf_counter() - t0:.1f} s")

    step(f"2/5 export it to an {args.quant} bundle, checked against transformers")
    bundle = work / f"{args.preset}-{args.quant}-bundle"
    m = export_bundle(str(ckpt), bundle, ExportOptions(recipe=recipe(args.quant), context=2048, force=True))
    if args.preset == "tiny" and args.quant != "fp32":
        print(
            "  (random weights: their int4-vs-fp32 agreement means nothing; the README's fidelity table uses the\n"
            "   trained preset. The fp32 export of the same model is token-identical to transformers.)"
        )
    for c in m["parity"].get("cases", []):
        status = "tokens equal" if c["tokens_equal"] else f"first divergence at token {c['first_divergence']}"
        print(f"  parity {c['case']:<12} {status:<32} logit cosine {c['logits_cosine']:.5f}")
    print(format_plan(m["memory_plan"], assumptions=False))

    step("3/5 verify every byte of the bundle against its manifest")
    print(f"OK: bundle {verify_bundle(bundle).bundle_id}")

    step("4/5 start the daemon (edge serve) and describe a camera frame + a microphone clip over gRPC")
    daemon = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge",
            "serve",
            "--bundle",
            str(bundle),
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert daemon.stderr is not None
    port = mport = 0
    for line in daemon.stderr:
        if match := re.search(r"\(port (\d+)\), metrics on [^:]+:(\d+)", line):
            port, mport = int(match.group(1)), int(match.group(2))
            print(line.strip().split(": ", 1)[-1])
            break
    if not port:
        print(f"the daemon did not start (exit {daemon.wait()})", file=sys.stderr)
        return 1
    try:
        frame = samples.part_image()
        (work / "frame.jpg").write_bytes(samples.jpeg_bytes(frame))
        (work / "clip.wav").write_bytes(samples.wav_bytes(samples.machine_audio()))
        req = pb.DescribeRequest(
            images=[pb.Image(encoded=(work / "frame.jpg").read_bytes())],
            audio=[pb.Audio(encoding=pb.AUDIO_ENCODING_WAV, data=(work / "clip.wav").read_bytes())],
            prompt="Describe any defect in this part and anything unusual you hear.",
            context=pb.PartContext(station_id="demo-station", part_id="bracket-0001"),
            options=pb.GenerationOptions(max_new_tokens=args.max_new_tokens),
        )
        print(
            f"frame.jpg ({frame.shape[1]}x{frame.shape[0]}, a scratched bracket) + clip.wav (2 s motor hum "
            "with a click)\nanswer: ",
            end="",
            flush=True,
        )
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            resp = describe(
                pb_grpc.InspectorServiceStub(channel),
                req,
                [],
                stream=True,
                on_text=lambda s: print(s, end="", flush=True),
                timeout=120,
            )
        t = resp.timings
        print(
            f"\ntimings: preprocess {t.preprocess_seconds * 1e3:.1f} ms, queue {t.queue_seconds * 1e3:.1f} ms, "
            f"prefill {t.prefill_seconds * 1e3:.1f} ms ({t.prompt_tokens} tokens), first token "
            f"{t.time_to_first_token_seconds * 1e3:.1f} ms, total {t.total_seconds * 1e3:.1f} ms "
            f"({t.generated_tokens} tokens)"
        )
        with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=10) as r:
            text = r.read().decode()
        keep = (
            "edge_inspector_requests_total{",
            "edge_inspector_description_seconds_count",
            "edge_inspector_serving ",
            "edge_inspector_tokens_generated_total ",
            "edge_inspector_build_info{",
            "edge_inspector_resident_memory",
        )
        print(
            "metrics:\n  "
            + "\n  ".join(ln for ln in text.splitlines() if ln.startswith(keep) and not ln.endswith(" 0.0"))
        )
    finally:
        step("5/5 stop the daemon (SIGTERM: drain, then exit)")
        daemon.send_signal(signal.SIGTERM)
        daemon.communicate(timeout=60)
        print(f"daemon exited with {daemon.returncode}")
    return daemon.returncode
