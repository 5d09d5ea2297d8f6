"""The daemon over real gRPC: parity with the engine and transformers, streaming, info, health, bad input."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import cv2
import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from edge.build.parity import synthetic_audio, synthetic_image
from edge.runtime.engine import Engine, GenerationParams
from edge.v1 import inspector_pb2 as pb
from edge.v1 import inspector_pb2_grpc as pb_grpc

PROMPT = "Describe any defect in this part."


def raw_rgb(img: np.ndarray) -> pb.Image:
    h, w, _ = img.shape
    return pb.Image(raw=pb.RawImage(width=w, height=h, format=pb.PIXEL_FORMAT_RGB8, data=img.tobytes()))


def f32(wave: np.ndarray) -> pb.Audio:
    return pb.Audio(
        encoding=pb.AUDIO_ENCODING_PCM_F32LE, sample_rate_hz=16_000, channels=1, data=wave.astype("<f4").tobytes()
    )


def test_describe_equals_engine_and_transformers(stub, fp32_bundle: Path) -> None:
    image, wave = synthetic_image(), synthetic_audio()
    req = pb.DescribeRequest(
        images=[raw_rgb(image)], audio=[f32(wave)], prompt=PROMPT, options=pb.GenerationOptions(max_new_tokens=32)
    )
    resp = stub.Describe(req, timeout=60)
    local = Engine(fp32_bundle, threads=1).generate(
        PROMPT, images=[image], audio=[wave], params=GenerationParams(max_new_tokens=32)
    )
    assert list(resp.token_ids) == local.token_ids
    assert resp.text == local.text
    # transformers' greedy tokens for exactly these inputs, recorded by the export's parity check
    manifest = json.loads((fp32_bundle / "manifest.json").read_text())
    ref = next(c for c in manifest["parity"]["cases"] if c["case"] == "image_audio")["reference_tokens"]
    got = list(resp.token_ids)
    if resp.stop_reason == pb.STOP_REASON_END_OF_TURN:  # the reference banned end-of-turn; compare before it
        got = got[:-1]
    assert got == ref[: len(got)] and len(got) >= 1
    assert resp.timings.prompt_tokens > 100 and resp.timings.generated_tokens == len(resp.token_ids)
    assert resp.model.bundle_id == manifest["bundle_id"]


def test_describe_stream_streams_the_same_answer(stub) -> None:
    _, buf = cv2.imencode(".jpg", synthetic_image()[:, :, ::-1])
    req = pb.DescribeRequest(
        images=[pb.Image(encoded=buf.tobytes())], prompt=PROMPT, options=pb.GenerationOptions(max_new_tokens=16)
    )
    events = list(stub.DescribeStream(pb.DescribeStreamRequest(request=req), timeout=60))
    tokens = [e.token for e in events if e.WhichOneof("event") == "token"]
    done = events[-1].done
    assert events[-1].WhichOneof("event") == "done"
    assert "".join(t.text for t in tokens) == done.text[: len("".join(t.text for t in tokens))]
    assert [t.token_id for t in tokens] == list(done.token_ids)[: len(tokens)]
    unary = stub.Describe(req, timeout=60)
    assert list(unary.token_ids) == list(done.token_ids)


def test_get_info_health_and_reflection(daemon, stub) -> None:
    info = stub.GetInfo(pb.GetInfoRequest(), timeout=10)
    assert info.has_vision and info.has_audio and info.context_tokens == 1024
    assert info.limits.queue_depth == 8 and info.parity["all_tokens_equal"] == "True"
    with grpc.insecure_channel(daemon.target) as ch:
        h = health_pb2_grpc.HealthStub(ch)
        for name in ("", "edge.v1.InspectorService"):
            assert h.Check(health_pb2.HealthCheckRequest(service=name)).status == health_pb2.HealthCheckResponse.SERVING
        from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

        r = reflection_pb2_grpc.ServerReflectionStub(ch)
        resp = next(r.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
        names = {s.name for s in resp.list_services_response.service}
        assert {"edge.v1.InspectorService", "grpc.health.v1.Health"} <= names
        # grpc.reflection.v1 (what grpcurl and Postman try first) answers too, with its own descriptor
        v1 = ch.stream_stream(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        asks = [
            reflection_pb2.ServerReflectionRequest(list_services=""),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol="grpc.reflection.v1.ServerReflection"),
            reflection_pb2.ServerReflectionRequest(file_containing_symbol="edge.v1.InspectorService"),
        ]
        listed, v1_file, ours = list(v1(iter(asks), timeout=10))
        assert {"grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"} <= {
            s.name for s in listed.list_services_response.service
        }
        from google.protobuf import descriptor_pb2

        for answer, package in ((v1_file, "grpc.reflection.v1"), (ours, "edge.v1")):
            fdp = descriptor_pb2.FileDescriptorProto.FromString(
                answer.file_descriptor_response.file_descriptor_proto[0]
            )
            assert fdp.package == package


BAD = [
    ("corrupt jpeg", pb.DescribeRequest(images=[pb.Image(encoded=b"\xff\xd8\xff\xe0" + b"\0" * 50)]), "images[0]"),
    (
        "truncated png",
        pb.DescribeRequest(
            images=[pb.Image(encoded=cv2.imencode(".png", np.zeros((8, 8), np.uint8))[1].tobytes()[:30])]
        ),
        "images[0]",
    ),
    ("zero-size raw", pb.DescribeRequest(images=[pb.Image(raw=pb.RawImage(width=0, height=0, format=2))]), "images[0]"),
    (
        "wrong stride",
        pb.DescribeRequest(
            images=[pb.Image(raw=pb.RawImage(width=10, height=10, stride=5, format=2, data=b"\0" * 300))]
        ),
        "images[0].raw",
    ),
    (
        "absurd size",
        pb.DescribeRequest(images=[pb.Image(raw=pb.RawImage(width=100000, height=100000, format=2, data=b"\0"))]),
        "images[0].raw",
    ),
    (
        "unknown pixel enum",
        pb.DescribeRequest(images=[pb.Image(raw=pb.RawImage(width=2, height=2, format=99, data=b"\0" * 12))]),
        "format",
    ),
    (
        "odd audio bytes",
        pb.DescribeRequest(audio=[pb.Audio(encoding=1, sample_rate_hz=16000, channels=1, data=b"\0" * 3)]),
        "audio[0]",
    ),
    ("nan audio", pb.DescribeRequest(audio=[f32(np.array([0.0, np.nan] * 100, np.float32))]), "audio[0]"),
    ("unknown audio enum", pb.DescribeRequest(audio=[pb.Audio(encoding=42, data=b"\0\0")]), "audio[0].encoding"),
    ("empty audio", pb.DescribeRequest(audio=[pb.Audio(encoding=1, sample_rate_hz=16000, channels=1)]), "audio[0]"),
    (
        "three channels",
        pb.DescribeRequest(audio=[pb.Audio(encoding=1, sample_rate_hz=16000, channels=3, data=b"\0" * 600)]),
        "audio[0]",
    ),
    ("empty request", pb.DescribeRequest(), "images"),
    (
        "too many tokens",
        pb.DescribeRequest(prompt="x", options=pb.GenerationOptions(max_new_tokens=100000)),
        "options.max_new_tokens",
    ),
    (
        "bad budget",
        pb.DescribeRequest(prompt="x", options=pb.GenerationOptions(max_soft_tokens=100)),
        "options.max_soft_tokens",
    ),
    ("bad top_p", pb.DescribeRequest(prompt="x", options=pb.GenerationOptions(top_p=2.0)), "options"),
]


@pytest.mark.parametrize(("name", "req", "field"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_invalid_argument_naming_the_field(daemon, stub, name: str, req, field: str) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stub.Describe(req, timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    assert field in err.value.details()
    assert stub.GetInfo(pb.GetInfoRequest(), timeout=10).version  # still serving


def test_oversized_message_is_resource_exhausted(daemon, stub) -> None:
    big = pb.DescribeRequest(images=[pb.Image(encoded=b"\xff" * (5 * 1024 * 1024))])
    with pytest.raises(grpc.RpcError) as err:
        stub.Describe(big, timeout=30)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert (
        stub.Describe(pb.DescribeRequest(prompt="ok?", options=pb.GenerationOptions(max_new_tokens=2))).text is not None
    )


def test_full_queue_is_resource_exhausted(fp32_bundle: Path, engine) -> None:
    from tests.serve.conftest import RunningDaemon, serve_config

    d = RunningDaemon(serve_config(fp32_bundle, queue_depth=1), engine)
    codes: list[grpc.StatusCode] = []
    try:
        with grpc.insecure_channel(d.target) as ch:
            stub = pb_grpc.InspectorServiceStub(ch)
            req = pb.DescribeRequest(
                prompt="Describe.", options=pb.GenerationOptions(max_new_tokens=300, ignore_eos=True)
            )

            def call() -> None:
                try:
                    stub.Describe(req, timeout=120)
                    codes.append(grpc.StatusCode.OK)
                except grpc.RpcError as exc:
                    codes.append(exc.code())

            threads = [threading.Thread(target=call) for _ in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes and grpc.StatusCode.OK in codes, codes
        assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}
        assert d.sample("edge_inspector_requests_total", {"rpc": "Describe", "code": "RESOURCE_EXHAUSTED"}) >= 1
    finally:
        d.stop()


def test_cancelling_a_stream_stops_its_generation(daemon, stub) -> None:
    before = daemon.sample("edge_inspector_descriptions_total", {"outcome": "cancelled"})
    opts = pb.GenerationOptions(max_new_tokens=500, ignore_eos=True)
    call = stub.DescribeStream(pb.DescribeStreamRequest(request=pb.DescribeRequest(prompt="Describe.", options=opts)))
    first = next(call)
    assert first.WhichOneof("event") == "token"
    call.cancel()
    import time

    deadline = time.monotonic() + 20
    while daemon.sample("edge_inspector_descriptions_total", {"outcome": "cancelled"}) <= before:
        assert time.monotonic() < deadline, "generation was not cancelled"
        time.sleep(0.05)
    assert stub.GetInfo(pb.GetInfoRequest(), timeout=10).version


def test_stage_histograms_move_after_a_request(daemon, stub) -> None:
    names = [
        "edge_inspector_preprocess_seconds_count",
        "edge_inspector_prefill_seconds_count",
        "edge_inspector_time_to_first_token_seconds_count",
        "edge_inspector_description_seconds_count",
        "edge_inspector_inter_token_seconds_count",
    ]
    before = {n: daemon.sample(n) for n in names}
    stub.Describe(pb.DescribeRequest(prompt="Describe.", options=pb.GenerationOptions(max_new_tokens=6)), timeout=30)
    for n in names:
        assert daemon.sample(n) > before[n], n
