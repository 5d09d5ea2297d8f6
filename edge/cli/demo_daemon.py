"""The demo's station half: start ``edge serve`` on the demo bundle, describe a frame + a clip over gRPC, stop it."""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LISTEN_ANY_PORT = ("--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0")
METRICS = (
    "edge_inspector_requests_total{",
    "edge_inspector_description_seconds_count",
    "edge_inspector_gate_frames_total{",
    "edge_inspector_journal_head_sequence ",
    "edge_inspector_serving ",
    "edge_inspector_tokens_generated_total ",
    "edge_inspector_build_info{",
    "edge_inspector_resident_memory",
)


class DaemonFailed(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(f"the daemon exited with {code}")
        self.code = code


@dataclass
class Daemon:
    port: int
    metrics_port: int
    log: list[str] = field(default_factory=list)
    returncode: int | None = None


@contextlib.contextmanager
def serving(bundle: Path, say: Any, extra: tuple[str, ...] = ()) -> Iterator[Daemon]:
    """``edge serve`` on ``bundle`` until the block ends; then SIGTERM, as systemd sends it (a step of its own)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge", "serve", "--bundle", str(bundle), *LISTEN_ANY_PORT, *extra],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    log: list[str] = []
    for line in proc.stderr:
        log.append(line)
        if match := re.search(r"\(port (\d+)\), metrics on [^:]+:(\d+)", line):
            daemon = Daemon(int(match.group(1)), int(match.group(2)), log)
            break
    else:
        code = proc.wait()
        print("".join(log[-20:]), file=sys.stderr)
        print(f"edge demo: the daemon did not start (exit {code}); its log is above", file=sys.stderr)
        raise DaemonFailed(code or 1)
    drain = threading.Thread(target=lambda: log.extend(proc.stderr or ()), daemon=True)
    drain.start()  # the daemon keeps logging; a full pipe would block it
    say.result(f"SERVING on 127.0.0.1:{daemon.port} (gRPC), metrics on http://127.0.0.1:{daemon.metrics_port}/metrics")
    try:
        yield daemon
    finally:
        say.step("stop the daemon", "SIGTERM, as systemd sends it: health turns NOT_SERVING, work in flight finishes.")
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        drain.join(10)
        daemon.returncode = proc.returncode
        say.result(f"the daemon exited with {proc.returncode}")
        if proc.returncode != 0:
            print("".join(log[-20:]), file=sys.stderr)


def describe_frame_and_clip(daemon: Daemon, work: Path, max_new_tokens: int, say: Any, random_weights: bool) -> None:
    """One DescribeStream request with a camera frame and a microphone clip, as station software would send it."""
    import grpc

    from edge import samples
    from edge.cli.safe_text import for_terminal
    from edge.client import describe
    from edge.v1 import inspector_pb2 as pb
    from edge.v1 import inspector_pb2_grpc as pb_grpc

    frame = samples.part_image()
    (work / "frame.jpg").write_bytes(samples.jpeg_bytes(frame))
    (work / "clip.wav").write_bytes(samples.wav_bytes(samples.machine_audio()))
    say.note(
        f"First one request, as station software would send it: {work / 'frame.jpg'} ({frame.shape[1]}x"
        f"{frame.shape[0]}, a scratched bracket) and {work / 'clip.wav'} (2 s of motor hum with a click) in one "
        "DescribeStream call."
    )
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
    with grpc.insecure_channel(f"127.0.0.1:{daemon.port}") as channel:
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
    if resp.gate.gate_id:
        g = resp.gate
        say.result(f"the gate scored the frame {g.score:.2f} ({'anomalous' if g.anomalous else 'passed'})")


def show_metrics(daemon: Daemon, say: Any) -> None:
    say.note("A few of the series Prometheus scrapes from the daemon:")
    with urllib.request.urlopen(f"http://127.0.0.1:{daemon.metrics_port}/metrics", timeout=10) as r:
        text = r.read().decode()
    say.result("\n".join(ln for ln in text.splitlines() if ln.startswith(METRICS) and not ln.endswith(" 0.0")))


def show_journal(daemon: Daemon, state: Path, say: Any) -> None:
    """What the journal kept of the session: every decision, and the evidence of the anomalies."""
    import collections
    import json

    import grpc

    from edge.v1 import inspector_pb2 as pb
    from edge.v1 import inspector_pb2_grpc as pb_grpc

    with grpc.insecure_channel(f"127.0.0.1:{daemon.port}") as ch:
        page = pb_grpc.InspectorServiceStub(ch).ListEvents(pb.ListEventsRequest(limit=1000), timeout=30)
    docs = [json.loads(e.json) for e in page.events]
    kinds = collections.Counter(d["kind"] for d in docs)
    files = sum(len(d["evidence"]) for d in docs)
    say.result(
        f"{len(docs)} decisions journaled in {state / 'journal.db'} ("
        + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        + f"), {files} evidence files in {state / 'evidence'}/"
    )
    for d in [d for d in docs if d["kind"] == "finished" and d["source"].startswith("inspect:")][:1]:
        roles = ", ".join(f"{r['role']} ({r['media_type']}, {r['bytes']} B)" for r in d["evidence"])
        say.result(f"e.g. event {d['sequence']} ({d['source']}, frame {d['frame']['sequence']}): {roles}")
    say.note("The same JSON goes to an MQTT broker with mqtt_host set; `edge events tail` follows it over gRPC.")
