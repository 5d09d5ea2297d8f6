"""The demo's station half: start ``edge serve`` on the demo bundle, describe a frame + a clip over gRPC, stop it."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Any

LISTEN_ANY_PORT = ("--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0")
METRICS = (
    "edge_inspector_requests_total{",
    "edge_inspector_description_seconds_count",
    "edge_inspector_serving ",
    "edge_inspector_tokens_generated_total ",
    "edge_inspector_build_info{",
    "edge_inspector_resident_memory",
)


def describe_over_grpc(bundle: Path, work: Path, max_new_tokens: int, say: Any, *, random_weights: bool) -> int:
    """Steps 4 and 5 of the demo; returns the daemon's exit code (0 after a clean drain)."""
    import grpc

    from edge import samples
    from edge.cli.safe_text import for_terminal
    from edge.client import describe
    from edge.v1 import inspector_pb2 as pb
    from edge.v1 import inspector_pb2_grpc as pb_grpc

    frame = samples.part_image()
    (work / "frame.jpg").write_bytes(samples.jpeg_bytes(frame))
    (work / "clip.wav").write_bytes(samples.wav_bytes(samples.machine_audio()))
    say.step(
        "start the daemon (edge serve) and describe a camera frame + a microphone clip over gRPC",
        "The daemon verifies and loads the bundle and warms up before it reports SERVING; then the demo sends\n"
        f"{work / 'frame.jpg'} ({frame.shape[1]}x{frame.shape[0]}, a scratched bracket) and {work / 'clip.wav'} "
        "(2 s of motor\nhum with a click) in one DescribeStream request, as station software would.",
    )
    daemon = subprocess.Popen(
        [sys.executable, "-m", "edge", "serve", "--bundle", str(bundle), *LISTEN_ANY_PORT],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert daemon.stderr is not None
    log: list[str] = []
    port = mport = 0
    for line in daemon.stderr:
        log.append(line)
        if match := re.search(r"\(port (\d+)\), metrics on [^:]+:(\d+)", line):
            port, mport = int(match.group(1)), int(match.group(2))
            break
    if not port:
        code = daemon.wait()
        print("".join(log[-20:]), file=sys.stderr)
        print(f"edge demo: the daemon did not start (exit {code}); its log is above", file=sys.stderr)
        return code or 1
    drain = threading.Thread(target=lambda: log.extend(daemon.stderr or ()), daemon=True)
    drain.start()  # the daemon keeps logging; a full pipe would block it
    say.result(f"SERVING on 127.0.0.1:{port} (gRPC), metrics on http://127.0.0.1:{mport}/metrics")
    try:
        if random_weights:
            say.note("The answer, token by token. Random weights give gibberish; control characters show as \\xNN.")
        else:
            say.note("The answer, token by token:")
        req = pb.DescribeRequest(
            images=[pb.Image(encoded=(work / "frame.jpg").read_bytes())],
            audio=[pb.Audio(encoding=pb.AUDIO_ENCODING_WAV, data=(work / "clip.wav").read_bytes())],
            prompt="Describe any defect in this part and anything unusual you hear.",
            context=pb.PartContext(station_id="demo-station", part_id="bracket-0001"),
            options=pb.GenerationOptions(max_new_tokens=max_new_tokens),
        )
        print("   > ", end="", flush=True)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            resp = describe(
                pb_grpc.InspectorServiceStub(channel),
                req,
                [],
                stream=True,
                on_text=lambda s: print(for_terminal(s).replace("\n", "\n     "), end="", flush=True),
                timeout=120,
            )
        print(flush=True)
        t = resp.timings
        say.note("Where the time went, from the daemon's reply:")
        say.result(
            f"preprocess {t.preprocess_seconds * 1e3:.1f} ms, queue {t.queue_seconds * 1e3:.1f} ms, prefill "
            f"{t.prefill_seconds * 1e3:.1f} ms ({t.prompt_tokens} prompt tokens), first token "
            f"{t.time_to_first_token_seconds * 1e3:.1f} ms, total {t.total_seconds * 1e3:.1f} ms "
            f"({t.generated_tokens} tokens)"
        )
        say.note("A few of the series Prometheus scrapes from the daemon:")
        with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=10) as r:
            text = r.read().decode()
        say.result("\n".join(ln for ln in text.splitlines() if ln.startswith(METRICS) and not ln.endswith(" 0.0")))
    finally:
        say.step("stop the daemon", "SIGTERM, as systemd sends it: health turns NOT_SERVING, work in flight finishes.")
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
        drain.join(10)
        say.result(f"the daemon exited with {daemon.returncode}")
    if daemon.returncode != 0:
        print("".join(log[-20:]), file=sys.stderr)
    return daemon.returncode
