"""Regression tests for the defects independent clients found (issue 10, table rows 1-8), over real gRPC.

Rows 9 and 10 (shutdown) are in test_lifecycle.py, which runs ``edge serve`` as a process.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter
from pathlib import Path

import cv2
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from edge.build.parity import synthetic_image
from edge.runtime.image import soft_token_count
from edge.v1 import inspector_pb2 as pb
from edge.v1 import inspector_pb2_grpc as pb_grpc
from tests.serve.conftest import RunningDaemon, serve_config
from tests.tools import rss_mib

DESCRIBE = "/edge.v1.InspectorService/Describe"
INSPECT = "/edge.v1.InspectorService/Inspect"


def jpeg(w: int = 64, h: int = 64) -> bytes:
    _, data = cv2.imencode(".jpg", cv2.cvtColor(synthetic_image(h, w), cv2.COLOR_RGB2BGR))
    return data.tobytes()


def events(stub: pb_grpc.InspectorServiceStub, reqs: list[pb.InspectRequest]) -> list[pb.InspectResponse]:
    return list(stub.Inspect(iter(reqs), timeout=60))


def config(**kw: object) -> pb.InspectRequest:
    opts = pb.GenerationOptions(max_new_tokens=4)
    mode = kw.pop("trigger_mode", pb.TRIGGER_MODE_EXPLICIT)
    return pb.InspectRequest(config=pb.InspectConfig(trigger_mode=mode, options=opts, **kw))  # type: ignore[arg-type]


def test_1_a_request_over_the_budget_is_refused_before_decoding_and_leaves_no_memory(daemon, stub) -> None:
    small = pb.Image(encoded=jpeg())  # 64x64: each would be upscaled to 280-1120 soft tokens (7-31 MB of patches)
    many = pb.DescribeRequest(images=[small] * 200, prompt="Describe.")
    big = pb.DescribeRequest(images=[small] * 8, options=pb.GenerationOptions(max_soft_tokens=1120))
    for req in (many, big):  # warm up the code paths before the baseline
        with pytest.raises(grpc.RpcError):
            stub.Describe(req, timeout=60)
    before = rss_mib()
    for _ in range(15):
        with pytest.raises(grpc.RpcError) as err:
            stub.Describe(many, timeout=60)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "images: 200 images is over the limit of 8 per request" in err.value.details()
        with pytest.raises(grpc.RpcError) as err:
            stub.Describe(big, timeout=60)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        tokens = 8 * soft_token_count(64, 64, 1120)  # from the headers: nothing was decoded
        assert f"8 image(s), {tokens} soft tokens" in err.value.details() and "context of 1024" in err.value.details()
    grown = rss_mib() - before
    # decoding and patching the images first cost 1.4 GB per 200-image request and kept most of it
    assert grown < 48, f"RSS grew by {grown:.0f} MiB over 30 rejected requests"


def test_2_prompt_text_is_limited_in_bytes_before_tokenizing(daemon, stub) -> None:
    huge = "x" * (3 * 1024 * 1024)
    results: list[object] = []

    def call() -> None:
        try:
            stub.Describe(pb.DescribeRequest(prompt=huge), timeout=60)
        except grpc.RpcError as exc:
            results.append(exc)

    t = threading.Thread(target=call)
    t.start()
    with grpc.insecure_channel(daemon.target) as ch:  # health keeps answering meanwhile
        ok = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=30)
    t.join(60)
    assert ok.status == health_pb2.HealthCheckResponse.SERVING
    [err] = results
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert err.details() == (  # type: ignore[attr-defined]
        "prompt: 3145728 bytes is over the limit of 8192 bytes (max_prompt_bytes); the model reads at most the "
        "bundle's context, so send the instruction, not a document"
    )
    for field in ("prompt", "system"):  # and inside a session's config
        with pytest.raises(grpc.RpcError) as e:
            events(stub, [config(**{field: "y" * 9000})])
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and f"config.{field}: 9000 bytes" in e.value.details()
    assert stub.GetInfo(pb.GetInfoRequest(), timeout=10).limits.max_prompt_bytes == 8192


def _invalid_utf8_prompt() -> bytes:
    return b"\x1a\x02\xff\xfe"  # field 3 (prompt), length-delimited, 2 bytes that are not UTF-8


@pytest.mark.parametrize(
    ("raw", "what"),
    [(b"\xff\xff\xff\xff", "bytes"), (_invalid_utf8_prompt(), "utf-8"), (b"\x0a\x05\x0a\x03", "truncated")],
)
def test_3_malformed_describe_is_invalid_argument_counted_and_quiet(daemon, caplog, raw: bytes, what: str) -> None:
    before = daemon.sample("edge_inspector_requests_total", {"rpc": "Describe", "code": "INVALID_ARGUMENT"})
    with caplog.at_level(logging.INFO), grpc.insecure_channel(daemon.target) as ch, pytest.raises(grpc.RpcError) as err:
        ch.unary_unary(DESCRIBE)(raw, timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (what, err.value.details())
    assert err.value.details().startswith("the request is not a valid edge.v1.DescribeRequest: ")
    after = daemon.sample("edge_inspector_requests_total", {"rpc": "Describe", "code": "INVALID_ARGUMENT"})
    assert after == before + 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def test_4_malformed_inspect_messages(daemon, caplog) -> None:
    with caplog.at_level(logging.INFO), grpc.insecure_channel(daemon.target) as ch:
        call = ch.stream_stream(INSPECT)
        with pytest.raises(grpc.RpcError) as err:
            list(call(iter([b"\xff\xff\xff\xff"]), timeout=30))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.value.details().startswith("the request is not a valid edge.v1.InspectRequest: ")
        # later in the stream: an error event with code 3, and the session goes on
        img = pb.Image(encoded=jpeg())
        reqs = [
            config().SerializeToString(),
            b"\x12\x02\xff",  # a frame field cut short
            pb.InspectRequest(frame=pb.Frame(capture_time=1.0, image=img)).SerializeToString(),
            pb.InspectRequest(trigger=pb.Trigger(capture_time=1.0)).SerializeToString(),
        ]
        out = [pb.InspectResponse.FromString(b) for b in call(iter(reqs), timeout=60)]
    kinds = [e.WhichOneof("event") for e in out]
    assert kinds.count("error") == 1 and kinds.count("finished") == 1, kinds
    [error] = [e.error for e in out if e.WhichOneof("event") == "error"]
    assert error.code == 3 and "not a valid edge.v1.InspectRequest" in error.message
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def test_5_bad_frames_and_chunks_are_refused_on_arrival_naming_the_field(stub) -> None:
    nan = float("nan")
    truncated = jpeg()[:-100]
    short_raw = pb.RawImage(width=32, height=32, format=pb.PIXEL_FORMAT_RGB8, data=bytes(32 * 31 * 3))
    pcm = pb.Audio(encoding=pb.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16_000, channels=1, data=bytes(3200))
    reqs = [
        config(),
        pb.InspectRequest(frame=pb.Frame(capture_time=1.0, image=pb.Image(raw=short_raw))),
        pb.InspectRequest(frame=pb.Frame(capture_time=2.0, image=pb.Image(encoded=truncated))),
        pb.InspectRequest(frame=pb.Frame(capture_time=nan, image=pb.Image(encoded=jpeg()))),
        pb.InspectRequest(audio=pb.AudioChunk(capture_time=nan, audio=pcm)),
        pb.InspectRequest(trigger=pb.Trigger(capture_time=math.inf)),
        pb.InspectRequest(frame=pb.Frame(capture_time=5.0, image=pb.Image(encoded=jpeg()))),
        pb.InspectRequest(trigger=pb.Trigger(capture_time=5.0)),
    ]
    out = events(stub, reqs)
    dropped = [e.dropped for e in out if e.WhichOneof("event") == "dropped"]
    assert [d.reason for d in dropped] == [pb.DROP_REASON_INVALID] * 3
    assert dropped[0].detail.startswith("frame.image.raw: a 32x32 rgb8 frame with stride 96 needs 3072..3072 bytes")
    assert dropped[1].detail.startswith("frame.image.encoded: the JPEG is truncated")
    assert dropped[2].detail == "frame.capture_time: must be a finite number, got nan" and dropped[2].capture_time == 0
    errors = [e.error for e in out if e.WhichOneof("event") == "error"]
    assert [(e.code, e.field) for e in errors] == [(3, "audio.capture_time"), (3, "trigger.capture_time")]
    assert [e.WhichOneof("event") for e in out].count("finished") == 1  # the good frame still gets described


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 1e308, 0.0])
def test_6_absurd_intervals_are_refused(stub, value: float) -> None:
    with pytest.raises(grpc.RpcError) as err:
        events(stub, [config(trigger_mode=pb.TRIGGER_MODE_INTERVAL, interval_seconds=value)])
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith("config.interval_seconds: must be ")


def test_7_audio_whose_timestamps_never_advance_stays_bounded(daemon) -> None:
    chunk = pb.Audio(
        encoding=pb.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16_000, channels=1, data=bytes(30 * 16_000 * 2)
    )
    audio = pb.InspectRequest(audio=pb.AudioChunk(capture_time=1_700_000_000.0, audio=chunk))

    def open_session_rss(n: int) -> float:
        """RSS after the daemon accepted ``n`` chunks, measured while the session is still open."""
        measured = threading.Event()

        def reqs():
            yield config()
            yield from [audio] * n
            measured.wait(120)

        with grpc.insecure_channel(daemon.target, options=[("grpc.max_send_message_length", 8 << 20)]) as ch:
            accepted = 0
            for e in pb_grpc.InspectorServiceStub(ch).Inspect(reqs(), timeout=180):
                assert e.WhichOneof("event") == "accepted", e
                accepted += 1  # noqa: SIM113 - counted as they arrive, measured at the n-th
                if accepted == n:
                    rss = rss_mib()
                    measured.set()
        return rss

    base = open_session_rss(30)  # the same traffic pattern, so gRPC's and malloc's own caches are warm in both
    grown = open_session_rss(100) - base  # 70 more chunks: the old buffer kept each (134 MB more of float32)
    assert grown < 67, f"RSS grew by {grown:.0f} MiB"


def test_8_describe_callers_retrying_on_a_full_queue_do_not_starve_sessions(fp32_bundle: Path, engine) -> None:
    d = RunningDaemon(serve_config(fp32_bundle, queue_depth=4), engine)
    served: Counter = Counter()
    stop = threading.Event()
    lock = threading.Lock()
    opts = pb.GenerationOptions(max_new_tokens=6, ignore_eos=True)

    def describer(i: int) -> None:
        req = pb.DescribeRequest(prompt="Describe.", options=opts, context=pb.PartContext(station_id=f"st-{i}"))
        with grpc.insecure_channel(d.target) as ch:
            stub = pb_grpc.InspectorServiceStub(ch)
            while not stop.is_set():
                try:
                    stub.Describe(req, timeout=60)
                except grpc.RpcError as exc:
                    assert exc.code() in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE)
                    continue  # retry at once, as the integrator's client did
                with lock:
                    served[f"describe-{i}"] += 1

    def session(i: int) -> None:
        img = synthetic_image(48, 48)
        raw = pb.Image(raw=pb.RawImage(width=48, height=48, format=pb.PIXEL_FORMAT_RGB8, data=img.tobytes()))

        def reqs():
            yield pb.InspectRequest(config=pb.InspectConfig(trigger_mode=pb.TRIGGER_MODE_EXPLICIT, options=opts))
            k = 0
            while not stop.is_set():
                k += 1
                yield pb.InspectRequest(frame=pb.Frame(capture_time=float(k), image=raw))
                yield pb.InspectRequest(trigger=pb.Trigger(capture_time=float(k)))
                time.sleep(0.05)  # a part every 50 ms

        with grpc.insecure_channel(d.target) as ch:
            for e in pb_grpc.InspectorServiceStub(ch).Inspect(reqs(), timeout=300):
                if e.WhichOneof("event") == "finished":
                    with lock:
                        served[f"inspect-{i}"] += 1

    threads = [threading.Thread(target=describer, args=(i,)) for i in range(4)]
    threads += [threading.Thread(target=session, args=(i,)) for i in range(2)]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 240
        while sum(served.values()) < 120:
            assert time.monotonic() < deadline, served
            time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join(60)
    finally:
        stop.set()
        d.stop()
    total = sum(served.values())
    for i in range(2):  # six sources; before, each session got 1-3 % while the retrying callers took the rest
        assert served[f"inspect-{i}"] >= 0.75 * total / 6, served
