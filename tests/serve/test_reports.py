"""Structured reports through the daemon: Describe, DescribeStream and Inspect, station and request schemas."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import grpc
import jsonschema
import pytest

from edge.errors import ConfigError
from edge.station.report import default_report_schema
from edge.v1 import inspector_pb2 as pb
from edge.v1 import inspector_pb2_grpc as pb_grpc
from tests.serve.test_hardening import jpeg
from tests.tools import validate_report

SCHEMA = {
    "type": "object",
    "properties": {
        "ok": {"type": "boolean"},
        "kind": {"enum": ["dent", "scratch", "none"]},
        "count": {"type": "integer", "minimum": 0, "maximum": 9},
        "note": {"type": "string", "maxLength": 20},
    },
    "required": ["ok", "kind", "count", "note"],
    "additionalProperties": False,
}


def request(**options: object) -> pb.DescribeRequest:
    return pb.DescribeRequest(
        images=[pb.Image(encoded=jpeg())],
        prompt="Report the defect as JSON.",
        options=pb.GenerationOptions(**options),  # type: ignore[arg-type]
    )


def test_request_schema_gives_a_valid_reproducible_report_over_both_rpcs(stub) -> None:
    req = request(response_schema=json.dumps(SCHEMA), max_new_tokens=200)
    first = stub.Describe(req, timeout=60)
    assert first.report_json and not first.report_error and first.stop_reason == pb.STOP_REASON_END_OF_TURN
    jsonschema.validate(json.loads(first.report_json), SCHEMA)
    assert len(first.inputs_sha256) == 64 and len(first.schema_sha256) == 64
    again = stub.Describe(req, timeout=60)  # greedy, same inputs: the same report byte for byte
    assert (again.report_json, again.inputs_sha256) == (first.report_json, first.inputs_sha256)
    streamed = list(stub.DescribeStream(pb.DescribeStreamRequest(request=req), timeout=60))
    tokens = "".join(m.token.text for m in streamed if m.WhichOneof("event") == "token")
    assert tokens == first.report_json == streamed[-1].done.report_json  # the token stream is the JSON text
    other = request(response_schema=json.dumps(SCHEMA), max_new_tokens=200, seed=1)  # options are inputs too
    assert stub.Describe(other, timeout=60).inputs_sha256 != first.inputs_sha256


def test_structured_uses_the_station_schema(stub) -> None:
    resp = stub.Describe(request(structured=True), timeout=60)
    assert not resp.report_error, resp.report_error
    report = validate_report(resp.report_json, default_report_schema())
    assert list(report) == [
        "anomaly",
        "defect_type",
        "location",
        "severity",
        "confidence",
        "recommended_action",
        "description",
    ]
    plain = stub.Describe(request(max_new_tokens=4), timeout=60)
    assert plain.report_json == "" and plain.schema_sha256 == "" and len(plain.inputs_sha256) == 64


def test_running_out_of_tokens_is_said_never_an_invalid_report(stub) -> None:
    resp = stub.Describe(request(response_schema=json.dumps(SCHEMA), max_new_tokens=5), timeout=60)
    assert resp.stop_reason == pb.STOP_REASON_MAX_TOKENS and resp.report_json == ""
    assert resp.report_error.startswith("max_new_tokens (5) ran out before the JSON report was complete")


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ("{nope", "options.response_schema: not valid JSON: "),
        (
            '{"type": "object", "properties": {"a": {"type": "wat"}}}',
            "options.response_schema: not a valid JSON Schema",
        ),
        ("{" + '"description": "' + "x" * 70_000 + '"}', "options.response_schema: 70019 bytes is over the limit"),
    ],
)
def test_unusable_schemas_are_invalid_argument_naming_the_field(stub, schema: str, message: str) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stub.Describe(request(response_schema=schema), timeout=60)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith(message), err.value.details()


def test_inspect_sessions_report_too(stub) -> None:
    opts = pb.GenerationOptions(response_schema=json.dumps(SCHEMA), max_new_tokens=200)
    reqs = [
        pb.InspectRequest(config=pb.InspectConfig(trigger_mode=pb.TRIGGER_MODE_EXPLICIT, options=opts)),
        pb.InspectRequest(frame=pb.Frame(capture_time=1.0, image=pb.Image(encoded=jpeg()))),
        pb.InspectRequest(trigger=pb.Trigger(capture_time=1.0)),
    ]
    out = list(stub.Inspect(iter(reqs), timeout=60))
    [finished] = [e.finished for e in out if e.WhichOneof("event") == "finished"]
    jsonschema.validate(json.loads(finished.result.report_json), SCHEMA)
    assert len(finished.result.inputs_sha256) == 64
    with pytest.raises(grpc.RpcError) as err:
        bad = pb.GenerationOptions(response_schema="[]")
        list(stub.Inspect(iter([pb.InspectRequest(config=pb.InspectConfig(trigger_mode=1, options=bad))]), timeout=30))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith("config.options.response_schema: a JSON Schema is an object")


def test_a_broken_station_schema_stops_the_daemon_with_one_line(fp32_bundle: Path, tmp_path: Path) -> None:
    broken = tmp_path / "report.schema.json"
    broken.write_text('{"type": "object", "properties": {"x": {"type": "nope"}}}')
    proc = subprocess.run(
        [sys.executable, "-m", "edge", "serve", "--bundle", str(fp32_bundle), "--report-schema", str(broken),
         "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--no-warmup"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == ConfigError.exit_code
    last = proc.stderr.strip().splitlines()[-1]
    assert f"report_schema {broken}: not a valid JSON Schema" in last, proc.stderr


def test_client_helpers_unchanged(daemon) -> None:
    with grpc.insecure_channel(daemon.target) as ch:
        assert (
            pb_grpc.InspectorServiceStub(ch).GetInfo(pb.GetInfoRequest(), timeout=10).limits.max_schema_bytes == 65536
        )
