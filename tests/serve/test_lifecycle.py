"""``edge serve`` as a process: start-up failures, SIGTERM drain, config precedence, no torch."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import grpc
import pytest

from edge.errors import ConfigError
from edge.serve.config import load_config
from edge.v1 import inspector_pb2 as pb
from edge.v1 import inspector_pb2_grpc as pb_grpc


def start(bundle: Path, *extra: str) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
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
            "--grace-seconds",
            "30",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 120
    for line in proc.stderr:
        m = re.search(r"\(port (\d+)\)", line)
        if m:
            return proc, int(m.group(1))
        assert time.monotonic() < deadline, "daemon did not start"
    raise AssertionError(f"daemon exited early with {proc.wait()}")


def test_sigterm_lets_the_in_flight_description_finish(fp32_bundle: Path) -> None:
    proc, port = start(fp32_bundle)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            stub = pb_grpc.InspectorServiceStub(ch)
            opts = pb.GenerationOptions(max_new_tokens=400, ignore_eos=True)
            call = stub.DescribeStream(
                pb.DescribeStreamRequest(request=pb.DescribeRequest(prompt="Describe.", options=opts)), timeout=120
            )
            assert next(call).WhichOneof("event") == "token"  # in flight
            proc.send_signal(signal.SIGTERM)
            events = list(call)
            assert events[-1].WhichOneof("event") == "done"
            assert len(events[-1].done.token_ids) == 400  # finished, not cut off
            with pytest.raises(grpc.RpcError) as err:  # and no new work is taken
                stub.Describe(pb.DescribeRequest(prompt="again"), timeout=10)
            # UNAVAILABLE while draining (our message) or once the port is closed; CANCELLED if the call lands in
            # the sub-second window where grpc itself is stopping the server
            assert err.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)
        assert proc.wait(60) == 0
    finally:
        proc.kill()
        proc.communicate()


def _inspect_until_sigterm(proc: subprocess.Popen, port: int, frames: int) -> tuple[list, grpc.RpcError | None]:
    """An Inspect session with ``frames`` buffered frames and one long description; SIGTERM once it started."""
    hold = threading.Event()

    def reqs():
        opts = pb.GenerationOptions(max_new_tokens=400, ignore_eos=True)
        yield pb.InspectRequest(config=pb.InspectConfig(trigger_mode=pb.TRIGGER_MODE_EXPLICIT, options=opts))
        img = pb.Image(raw=pb.RawImage(width=8, height=8, format=pb.PIXEL_FORMAT_GRAY8, data=bytes(64)))
        for k in range(1, frames + 1):
            yield pb.InspectRequest(frame=pb.Frame(capture_time=float(k), image=img))
        yield pb.InspectRequest(trigger=pb.Trigger(capture_time=3.0))
        hold.wait(120)  # the stream stays open: the daemon must end it

    events, error = [], None
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        try:
            for e in pb_grpc.InspectorServiceStub(ch).Inspect(reqs(), timeout=120):
                events.append(e)
                if e.WhichOneof("event") == "started":
                    proc.send_signal(signal.SIGTERM)
        except grpc.RpcError as exc:
            error = exc
        finally:
            hold.set()
    return events, error


def test_9_sigterm_ends_every_accepted_frame_of_an_open_session_without_tracebacks(fp32_bundle: Path) -> None:
    proc, port = start(fp32_bundle)
    try:
        events, error = _inspect_until_sigterm(proc, port, frames=5)
        assert proc.wait(60) == 0
        _, stderr = proc.communicate()
    finally:
        proc.kill()
    accepted = [e.accepted.sequence for e in events if e.WhichOneof("event") == "accepted"]
    finals = Counter()
    for e in events:
        kind = e.WhichOneof("event")
        if kind == "finished":
            finals[("finished", 3)] += 1
        elif kind == "dropped":
            finals[(pb.DropReason.Name(e.dropped.reason), e.dropped.sequence)] += 1
    assert accepted == [1, 2, 3, 4, 5]
    assert finals == Counter(  # frame 1 superseded (buffer of 4), 3 described, the rest dropped at shutdown
        {
            ("DROP_REASON_SUPERSEDED", 1): 1,
            ("finished", 3): 1,
            ("DROP_REASON_SHUTDOWN", 2): 1,
            ("DROP_REASON_SHUTDOWN", 4): 1,
            ("DROP_REASON_SHUTDOWN", 5): 1,
        }
    ), events
    assert error is not None and error.code() == grpc.StatusCode.UNAVAILABLE and "shutting down" in error.details()
    assert "Traceback" not in stderr and " ERROR " not in stderr, stderr
    assert "the running description finished" in stderr  # and the log says so


def test_10_the_grace_period_is_kept_and_the_log_says_what_happened(fp32_bundle: Path) -> None:
    grace = 0.01  # far shorter than the 400-token description, which is cancelled between tokens
    proc, port = start(fp32_bundle, "--grace-seconds", str(grace))
    try:
        events, error = _inspect_until_sigterm(proc, port, frames=3)
        assert proc.wait(60) == 0
        _, stderr = proc.communicate()
    finally:
        proc.kill()
    dropped = {e.dropped.sequence: e.dropped for e in events if e.WhichOneof("event") == "dropped"}
    assert sorted(dropped) == [1, 2, 3] and not [e for e in events if e.WhichOneof("event") == "finished"]
    assert dropped[3].reason == pb.DROP_REASON_SHUTDOWN and "cancelled" in dropped[3].detail
    assert error is not None and error.code() == grpc.StatusCode.UNAVAILABLE
    m = re.search(r"drained in ([0-9.]+) s of ([0-9.]+) s grace: the running description was cancelled", stderr)
    assert m, stderr
    # the daemon's own account of its drain: every wait after the deadline is bounded by OVERRUN_SECONDS
    assert float(m.group(1)) <= grace + 1.0, m.group(0)
    assert "Traceback" not in stderr, stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--queue-depth", "zero"], "queue_depth must be a int"),
        (["--listen", "nonsense"], "listen must be HOST:PORT"),
        (["--tls-cert", "/nonexistent.pem"], "tls_cert and tls_key must be given together"),
    ],
)
def test_bad_config_exits_with_one_line(fp32_bundle: Path, args: list[str], message: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "edge", "serve", "--bundle", str(fp32_bundle), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == ConfigError.exit_code
    assert message in proc.stderr and proc.stderr.strip().count("\n") == 0, proc.stderr


def test_bad_bundle_and_busy_port_exit_non_zero(fp32_bundle: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "edge", "serve", "--bundle", str(tmp_path / "none"), "--metrics-listen", "127.0.0.1:0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 3 and "no bundle here" in proc.stderr.splitlines()[-1]
    daemon, port = start(fp32_bundle)
    try:
        busy = subprocess.run(
            [
                sys.executable,
                "-m",
                "edge",
                "serve",
                "--bundle",
                str(fp32_bundle),
                "--listen",
                f"127.0.0.1:{port}",
                "--metrics-listen",
                "127.0.0.1:0",
                "--no-warmup",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert busy.returncode == ConfigError.exit_code and "port in use" in busy.stderr.splitlines()[-1]
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.communicate(timeout=60)
        assert daemon.returncode == 0


def test_config_precedence_flags_env_toml(tmp_path: Path) -> None:
    toml = tmp_path / "edge.toml"
    toml.write_text('[serve]\nqueue_depth = 3\nmax_streams = 5\nlisten = "0.0.0.0:1"\n')
    cfg = load_config({"queue_depth": "7"}, {"EDGE_MAX_STREAMS": "9", "EDGE_QUEUE_DEPTH": "4"}, toml)
    assert (cfg.queue_depth, cfg.max_streams, cfg.listen) == (7, 9, "0.0.0.0:1")
    toml.write_text("[serve]\nqueue_dept = 3\n")
    with pytest.raises(ConfigError, match="unknown key 'queue_dept'"):
        load_config({}, {}, toml)
    with pytest.raises(ConfigError, match="EDGE_QUEUE_DEPTH"):
        load_config({}, {"EDGE_QUEUE_DEPTH": "many"}, None)


def test_serve_imports_no_torch() -> None:
    code = (
        "import sys\nimport edge.serve.server, edge.cli.serve_cmd, edge.serve.metrics\n"
        "print('BAD:' + ','.join(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**os.environ})
    assert out.stdout.strip() == "BAD:"


def test_example_config_lists_every_key_with_its_default() -> None:
    import tomllib
    from dataclasses import fields

    from edge.serve.config import ServeConfig

    full = (Path(__file__).parents[2] / "deploy" / "edge-inspector.toml").read_text()
    text, _, camera = full.partition("\n# [[cameras]]\n")  # the camera example: checked below
    active = tomllib.loads(text)["serve"]
    commented = {m.group(1) for m in re.finditer(r"^# (\w+) = ", text, re.M)}
    names = {f.name for f in fields(ServeConfig)}
    assert set(active) | commented == names
    cfg = load_config({}, {}, Path(__file__).parents[2] / "deploy" / "edge-inspector.toml")
    defaults = ServeConfig()
    assert all(getattr(cfg, k) == getattr(defaults, k) for k in active), "the example must show the defaults"
    # the [[cameras]] example: every key, and (uncommented) a valid camera whose values are the defaults
    from edge.serve.camera_config import camera_from_table
    from edge.sources.config import CameraConfig

    example = tomllib.loads(re.sub(r"^# (?!#)", "", camera, flags=re.M))
    assert set(example) == {f.name for f in fields(CameraConfig)}
    parsed = camera_from_table(example, 0, "example")
    base = CameraConfig(id=parsed.id, url=parsed.url)
    differ = {k for k in example if getattr(parsed, k) != getattr(base, k)}
    assert differ <= {"roi", "line", "station", "trigger"}, differ
