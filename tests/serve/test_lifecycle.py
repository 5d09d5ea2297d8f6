"""``edge serve`` as a process: start-up failures, SIGTERM drain, config precedence, no torch."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
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

    text = (Path(__file__).parents[2] / "deploy" / "edge-inspector.toml").read_text()
    active = tomllib.loads(text)["serve"]
    commented = {m.group(1) for m in re.finditer(r"^# (\w+) = ", text, re.M)}
    names = {f.name for f in fields(ServeConfig)}
    assert set(active) | commented == names
    cfg = load_config({}, {}, Path(__file__).parents[2] / "deploy" / "edge-inspector.toml")
    defaults = ServeConfig()
    assert all(getattr(cfg, k) == getattr(defaults, k) for k in active), "the example must show the defaults"
