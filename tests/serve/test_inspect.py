"""Inspect sessions over real gRPC: bounded buffering, fair service, triggers, protocol errors."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import grpc
import numpy as np
import pytest

from edge.build.parity import synthetic_audio, synthetic_image
from edge.v1 import inspector_pb2 as pb
from edge.v1 import inspector_pb2_grpc as pb_grpc


def frame(img: np.ndarray, t: float) -> pb.InspectRequest:
    h, w, _ = img.shape
    raw = pb.RawImage(width=w, height=h, format=pb.PIXEL_FORMAT_RGB8, data=img.tobytes())
    return pb.InspectRequest(frame=pb.Frame(capture_time=t, camera_id="cam-1", image=pb.Image(raw=raw)))


def config(mode: int, **kw) -> pb.InspectRequest:
    opts = pb.GenerationOptions(max_new_tokens=kw.pop("max_new_tokens", 8))
    return pb.InspectRequest(config=pb.InspectConfig(trigger_mode=mode, options=opts, prompt="Describe.", **kw))


def tally(events: list[pb.InspectResponse]) -> Counter:
    c: Counter = Counter()
    for e in events:
        kind = e.WhichOneof("event")
        c[kind] += 1
        if kind == "dropped":
            c["dropped:" + pb.DropReason.Name(e.dropped.reason)] += 1
    return c


def test_200_fast_frames_add_up_and_memory_stays_bounded(daemon) -> None:
    import resource

    img = np.ascontiguousarray(np.broadcast_to(synthetic_image(480, 640), (480, 640, 3)))  # 0.9 MB raw frame

    def requests():
        yield config(pb.TRIGGER_MODE_INTERVAL, interval_seconds=0.05, max_new_tokens=24)
        t0 = time.time()
        for i in range(200):
            yield frame(img, t0 + i / 1000)

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with grpc.insecure_channel(daemon.target, options=[("grpc.max_send_message_length", 8 << 20)]) as ch:
        events = list(pb_grpc.InspectorServiceStub(ch).Inspect(requests(), timeout=120))
    growth_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    c = tally(events)
    assert c["accepted"] == 200
    described = c["finished"]
    dropped = sum(v for k, v in c.items() if k.startswith("dropped:"))
    assert described + dropped == 200, c
    assert described >= 1 and c["dropped:DROP_REASON_SUPERSEDED"] >= 100, c
    # 200 x 0.9 MB went through; a buffer that kept them would have grown by ~180 MB
    assert growth_mb < 120, growth_mb


def test_explicit_trigger_describes_the_nearest_frame_with_audio(daemon) -> None:
    t0 = 1_700_000_000.0
    img = synthetic_image(96, 128)
    wave = synthetic_audio(2.0)
    reqs = [config(pb.TRIGGER_MODE_EXPLICIT, audio_before_seconds=0.5, audio_after_seconds=0.5)]
    reqs += [frame(img, t0 + k) for k in range(3)]  # frames at t0, t0+1, t0+2
    reqs.append(
        pb.InspectRequest(
            audio=pb.AudioChunk(
                capture_time=t0,
                audio=pb.Audio(
                    encoding=pb.AUDIO_ENCODING_PCM_F32LE,
                    sample_rate_hz=16_000,
                    channels=1,
                    data=wave.astype("<f4").tobytes(),
                ),
            )
        )
    )
    reqs.append(pb.InspectRequest(trigger=pb.Trigger(capture_time=t0 + 1.1, reason="part in position")))
    with grpc.insecure_channel(daemon.target) as ch:
        events = list(pb_grpc.InspectorServiceStub(ch).Inspect(iter(reqs), timeout=60))
    started = [e.started for e in events if e.WhichOneof("event") == "started"]
    finished = [e.finished for e in events if e.WhichOneof("event") == "finished"]
    assert len(started) == 1 and started[0].frame_sequence == 2  # the frame captured at t0 + 1
    assert len(finished) == 1
    # one image block plus 1 s of audio (0.5 s each side of the frame) = 25 audio tokens in the prompt
    assert finished[0].result.timings.prompt_tokens > 25
    c = tally(events)
    assert c["accepted"] == 4 and c["dropped:DROP_REASON_SUPERSEDED"] == 2  # the two frames never described


def test_four_concurrent_streams_are_all_served(daemon) -> None:
    """Each stream triggers twice while the others do too; the queue (depth 8) holds all eight."""
    results: dict[int, Counter] = {}
    barrier = threading.Barrier(4)

    def requests(i: int):
        img = synthetic_image(64 + 16 * i, 96)
        yield config(pb.TRIGGER_MODE_EXPLICIT, max_new_tokens=16)
        barrier.wait(30)
        for k in range(2):
            yield frame(img, 100.0 * i + k)
            yield pb.InspectRequest(trigger=pb.Trigger(capture_time=100.0 * i + k))

    def run(i: int) -> None:
        with grpc.insecure_channel(daemon.target) as ch:
            results[i] = tally(list(pb_grpc.InspectorServiceStub(ch).Inspect(requests(i), timeout=120)))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [0, 1, 2, 3]
    for c in results.values():
        assert c["accepted"] == 2 and c["finished"] == 2, c


def test_first_message_must_be_config(daemon) -> None:
    with grpc.insecure_channel(daemon.target) as ch:
        stub = pb_grpc.InspectorServiceStub(ch)
        with pytest.raises(grpc.RpcError) as err:
            list(stub.Inspect(iter([frame(synthetic_image(48, 48), 1.0)]), timeout=30))
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "config" in err.value.details()

        def silent():
            time.sleep(3)  # the test daemon waits 1 s for the first message
            yield from ()

        with pytest.raises(grpc.RpcError) as err:
            list(stub.Inspect(silent(), timeout=30))
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "no first message" in err.value.details()


def test_bad_frames_and_enums_keep_the_stream_alive(daemon) -> None:
    reqs = [
        config(pb.TRIGGER_MODE_EXPLICIT),
        pb.InspectRequest(frame=pb.Frame(capture_time=1.0, image=pb.Image(encoded=b"not an image"))),
        pb.InspectRequest(
            frame=pb.Frame(capture_time=1.1, image=pb.Image(raw=pb.RawImage(width=4, height=4, format=77, data=b"0")))
        ),
        pb.InspectRequest(
            audio=pb.AudioChunk(
                capture_time=1.2, audio=pb.Audio(encoding=1, sample_rate_hz=16000, channels=1, data=b"\0")
            )
        ),
        pb.InspectRequest(),
        config(pb.TRIGGER_MODE_EXPLICIT),
        frame(synthetic_image(64, 64), 2.0),
        pb.InspectRequest(trigger=pb.Trigger(capture_time=2.0)),
    ]
    with grpc.insecure_channel(daemon.target) as ch:
        events = list(pb_grpc.InspectorServiceStub(ch).Inspect(iter(reqs), timeout=60))
    c = tally(events)
    assert c["dropped:DROP_REASON_INVALID"] == 2 and c["finished"] == 1, c
    errors = [e.error for e in events if e.WhichOneof("event") == "error"]
    assert {e.code for e in errors} == {3, 9}  # INVALID_ARGUMENT (audio, empty message), FAILED_PRECONDITION
    assert any(e.field == "audio.audio" for e in errors)


def test_bad_config_is_invalid_argument(daemon) -> None:
    with grpc.insecure_channel(daemon.target) as ch:
        stub = pb_grpc.InspectorServiceStub(ch)
        for cfg, field in [
            (config(99), "trigger_mode"),
            (config(pb.TRIGGER_MODE_INTERVAL, interval_seconds=0.001), "interval_seconds"),
        ]:
            with pytest.raises(grpc.RpcError) as err:
                list(stub.Inspect(iter([cfg]), timeout=30))
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and field in err.value.details()


def test_client_vanishing_mid_stream_leaves_the_daemon_healthy(daemon) -> None:
    gate = threading.Event()

    def requests():
        yield config(pb.TRIGGER_MODE_EXPLICIT, max_new_tokens=400)
        yield frame(synthetic_image(64, 64), 1.0)
        yield pb.InspectRequest(trigger=pb.Trigger(capture_time=1.0))
        gate.wait(30)

    with grpc.insecure_channel(daemon.target) as ch:
        call = pb_grpc.InspectorServiceStub(ch).Inspect(requests())
        for event in call:
            if event.WhichOneof("event") == "started":
                break
        call.cancel()
    gate.set()
    deadline = time.monotonic() + 20
    while daemon.sample("edge_inspector_active_streams") != 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with grpc.insecure_channel(daemon.target) as ch:
        assert pb_grpc.InspectorServiceStub(ch).GetInfo(pb.GetInfoRequest(), timeout=10).version


@pytest.fixture(scope="module", autouse=True)
def _bundle_exists(fp32_bundle: Path) -> None:
    assert (fp32_bundle / "manifest.json").exists()


def test_frames_that_waited_too_long_are_dropped_as_stale(fp32_bundle: Path, engine) -> None:
    from tests.serve.conftest import RunningDaemon, serve_config

    d = RunningDaemon(serve_config(fp32_bundle, stale_after_seconds=0.05), engine)
    try:
        reqs = [config(pb.TRIGGER_MODE_EXPLICIT, max_new_tokens=200)]
        reqs[0].config.options.ignore_eos = True  # the first description surely takes longer than 0.05 s
        for k in range(3):  # three triggers at once: the 2nd and 3rd wait behind a 200-token description
            reqs += [frame(synthetic_image(64, 64), float(k)), pb.InspectRequest(trigger=pb.Trigger(capture_time=k))]
        with grpc.insecure_channel(d.target) as ch:
            c = tally(list(pb_grpc.InspectorServiceStub(ch).Inspect(iter(reqs), timeout=120)))
        assert c["finished"] >= 1 and c["dropped:DROP_REASON_STALE"] >= 1, c
        assert c["finished"] + c["dropped:DROP_REASON_STALE"] == 3, c
        assert d.sample("edge_inspector_frames_dropped_total", {"reason": "stale"}) == c["dropped:DROP_REASON_STALE"]
    finally:
        d.stop()
