"""Property test: random, mostly malformed requests never crash the daemon or get INTERNAL."""

from __future__ import annotations

import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.v1 import inspector_pb2 as pb
from edge.v1 import inspector_pb2_grpc as pb_grpc
from tests.tools import rss_mib

ALLOWED = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED}
JPEG_HEAD = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
PNG_HEAD = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"

raw_images = st.builds(
    lambda w, h, s, f, d: pb.Image(raw=pb.RawImage(width=w, height=h, stride=s, format=f, data=d)),
    st.integers(0, 70_000),
    st.integers(0, 70_000),
    st.integers(0, 300),
    st.integers(0, 8),
    st.binary(max_size=4096),
)
encoded_images = st.builds(
    lambda head, tail: pb.Image(encoded=head + tail),
    st.sampled_from([b"", JPEG_HEAD, PNG_HEAD, b"BM", b"II*\0"]),
    st.binary(max_size=2048),
)
audios = st.builds(
    lambda e, r, c, d: pb.Audio(encoding=e, sample_rate_hz=r, channels=c, data=d),
    st.integers(0, 6),
    st.sampled_from([0, 1, 7999, 8000, 16000, 44100, 48000, 250_000]),
    st.integers(0, 4),
    st.binary(max_size=4096),
)
options = st.builds(
    lambda n, t, k, p, s: pb.GenerationOptions(max_new_tokens=n, temperature=t, top_k=k, top_p=p, max_soft_tokens=s),
    st.sampled_from([0, 1, 3, 100_000]),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.integers(0, 10_000),
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.sampled_from([0, 70, 71, 280, 5000]),
)
requests = st.builds(
    lambda imgs, auds, prompt, opts: pb.DescribeRequest(images=imgs, audio=auds, prompt=prompt, options=opts),
    st.lists(st.one_of(raw_images, encoded_images), max_size=2),
    st.lists(audios, max_size=2),
    st.text(max_size=40),
    options,
)


@pytest.fixture(scope="module")
def rss_at_start(daemon) -> float:
    return rss_mib()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(req=requests)
def test_random_requests_get_an_answer_or_a_clear_error(daemon, rss_at_start, req: pb.DescribeRequest) -> None:
    with grpc.insecure_channel(daemon.target) as ch:
        stub = pb_grpc.InspectorServiceStub(ch)
        if req.options.max_new_tokens > 8 and req.options.max_new_tokens != 100_000:
            req.options.max_new_tokens = 8  # keep valid generations short
        try:
            stub.Describe(req, timeout=60)
        except grpc.RpcError as exc:
            assert exc.code() in ALLOWED, (exc.code(), exc.details())
            assert exc.details()
        assert (
            health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=10).status
            == health_pb2.HealthCheckResponse.SERVING
        )


# -- raw bytes on every RPC: what a broken client, a proxy or a fuzzer puts on the wire ---------------------
RAW_ALLOWED = ALLOWED | {
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.UNAUTHENTICATED,
}
_IMG = pb.Image(raw=pb.RawImage(width=4, height=4, format=pb.PIXEL_FORMAT_GRAY8, data=bytes(16)))
_OPTS = pb.GenerationOptions(max_new_tokens=2)
VALID = {
    "Describe": pb.DescribeRequest(images=[_IMG], prompt="Describe.", options=_OPTS).SerializeToString(),
    "DescribeStream": pb.DescribeStreamRequest(
        request=pb.DescribeRequest(prompt="Hi.", options=_OPTS)
    ).SerializeToString(),
    "GetInfo": b"",
}
INSPECT_VALID = [
    pb.InspectRequest(
        config=pb.InspectConfig(trigger_mode=pb.TRIGGER_MODE_EXPLICIT, options=_OPTS)
    ).SerializeToString(),
    pb.InspectRequest(frame=pb.Frame(capture_time=1.0, image=_IMG)).SerializeToString(),
    pb.InspectRequest(trigger=pb.Trigger(capture_time=1.0)).SerializeToString(),
]


@st.composite
def mutated(draw: st.DrawFn, valid: bytes) -> bytes:
    """Random bytes, or a valid message with bits flipped, cut short, or a string made invalid UTF-8."""
    kind = draw(st.sampled_from(["random", "flip", "truncate", "utf8", "valid"]))
    if kind == "random" or not valid:
        return draw(st.binary(max_size=256))
    data = bytearray(valid)
    if kind == "flip":
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
    elif kind == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif kind == "utf8":
        data += b"\x1a\x03\xc3\x28\xff"  # a prompt/config field holding invalid UTF-8, appended (last one wins)
    return bytes(data)


rpc_calls = st.one_of(
    *[st.tuples(st.just(name), mutated(valid)) for name, valid in VALID.items()],
    st.tuples(st.just("Inspect"), st.lists(st.one_of(*[mutated(v) for v in INSPECT_VALID]), min_size=1, max_size=5)),
)


def _requests_total(daemon) -> float:
    return sum(
        s.value
        for metric in daemon.registry.collect()
        if metric.name == "edge_inspector_requests"
        for s in metric.samples
        if s.name == "edge_inspector_requests_total"
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(call=rpc_calls)
def test_raw_bytes_on_every_rpc_get_a_clear_status_and_are_counted(daemon, call) -> None:
    name, payload = call
    before = _requests_total(daemon)
    with grpc.insecure_channel(daemon.target) as ch:
        method = f"/edge.v1.InspectorService/{name}"  # no serializers: the bytes go on the wire as they are
        try:
            if name in ("Describe", "GetInfo"):
                ch.unary_unary(method)(payload, timeout=60)
            elif name == "DescribeStream":
                list(ch.unary_stream(method)(payload, timeout=60))
            else:
                list(ch.stream_stream(method)(iter(payload), timeout=60))
        except grpc.RpcError as exc:
            assert exc.code() in RAW_ALLOWED, (name, exc.code(), exc.details())
            assert exc.details()
        health = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
    deadline = time.monotonic() + 10  # a stream is counted when its generator closes, as its status goes out
    while _requests_total(daemon) != before + 1:
        assert time.monotonic() < deadline, (name, _requests_total(daemon) - before)
        time.sleep(0.01)


def test_memory_stays_bounded_after_the_fuzzing(daemon, rss_at_start: float) -> None:
    """Runs after the two property tests above (same module, same daemon): RSS must not have run away."""
    grown = rss_mib() - rss_at_start
    assert grown < 256, f"the test process (daemon included) grew by {grown:.0f} MiB while fuzzing"
