"""The journal inside a real daemon: decisions journaled before they are reported, ListEvents, WatchEvents,
GetEvidence, authorization, and evidence skipped below the free-space floor while descriptions go on."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import grpc
import numpy as np
import pytest

from edge.build.parity import synthetic_image
from edge.v1 import inspector_pb2 as pb
from edge.v1 import inspector_pb2_grpc as pb_grpc
from tests.serve.conftest import RunningDaemon, serve_config

OPTS = pb.GenerationOptions(max_new_tokens=4)


@pytest.fixture()
def journaled(tmp_path: Path, fp32_bundle: Path, engine: Any) -> Iterator[RunningDaemon]:
    cfg = serve_config(fp32_bundle, state_dir=tmp_path / "state", line_id="line-1", station_id="st-7")
    d = RunningDaemon(cfg, engine)
    yield d
    d.stop()


def jpeg(seed: int = 0) -> bytes:
    img = synthetic_image(64, 64)
    img = np.roll(np.asarray(img), seed, axis=1)
    return cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR))[1].tobytes()


def test_a_describe_is_journaled_with_its_evidence_before_it_is_answered(journaled: RunningDaemon) -> None:
    with grpc.insecure_channel(journaled.target) as ch:
        stub = pb_grpc.InspectorServiceStub(ch)
        image = jpeg()
        ctx = pb.PartContext(station_id="st-7", part_id="A-1")
        req = pb.DescribeRequest(images=[pb.Image(encoded=image)], prompt="D.", context=ctx, options=OPTS)
        reply = stub.Describe(req, timeout=60)
        page = stub.ListEvents(pb.ListEventsRequest(), timeout=10)  # right after the answer: already there
        (event,) = page.events
        assert event.kind == pb.EVENT_KIND_FINISHED and event.sequence == 1 and page.head_sequence == 1
        doc = json.loads(event.json)
        assert doc["finished"]["text"] == reply.text and doc["finished"]["inputs_sha256"] == reply.inputs_sha256
        assert doc["context"]["part_id"] == "A-1" and (doc["line"], doc["station"]) == ("line-1", "st-7")
        (frame,) = [r for r in doc["evidence"] if r["role"] == "frame"]
        got = stub.GetEvidence(pb.GetEvidenceRequest(id=frame["id"]), timeout=10)
        assert got.media_type == "image/jpeg" and got.data == image  # the frame as received
        with pytest.raises(grpc.RpcError) as err:
            stub.GetEvidence(pb.GetEvidenceRequest(id="0" * 64), timeout=10)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND and "retention" in err.value.details()
        with pytest.raises(grpc.RpcError) as err:
            stub.ListEvents(pb.ListEventsRequest(filter=pb.EventFilter(kinds=[0])), timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "filter.kinds[0]" in err.value.details()
    assert journaled.sample("edge_inspector_journal_head_sequence") == 1
    assert journaled.sample("edge_inspector_requests_total", {"rpc": "ListEvents", "code": "OK"}) == 1


def test_inspect_decisions_are_journaled_and_watch_replays_then_follows(journaled: RunningDaemon) -> None:
    img = np.asarray(synthetic_image(32, 32))
    raw = pb.RawImage(width=32, height=32, format=pb.PIXEL_FORMAT_RGB8, data=img.tobytes())
    session = [
        pb.InspectRequest(config=pb.InspectConfig(trigger_mode=pb.TRIGGER_MODE_EXPLICIT, prompt="D.", options=OPTS)),
        pb.InspectRequest(frame=pb.Frame(capture_time=1.0, image=pb.Image(encoded=b"not an image"))),
        pb.InspectRequest(frame=pb.Frame(capture_time=2.0, image=pb.Image(raw=raw))),
        pb.InspectRequest(trigger=pb.Trigger(capture_time=2.0)),
    ]
    watched: list[pb.Event] = []
    with grpc.insecure_channel(journaled.target) as ch:
        stub = pb_grpc.InspectorServiceStub(ch)
        stub.Describe(pb.DescribeRequest(prompt="first", options=OPTS), timeout=60)  # sequence 1, before the watch
        watch = stub.WatchEvents(pb.WatchEventsRequest(since_sequence=0), timeout=60)

        def follow() -> None:
            for reply in watch:
                watched.append(reply.event)
                if len(watched) == 3:
                    return

        t = threading.Thread(target=follow)
        t.start()
        finals = {}
        for e in stub.Inspect(iter(session), timeout=60):
            kind = e.WhichOneof("event")
            if kind in ("finished", "dropped"):
                seen = {json.loads(x.json)["kind"] for x in stub.ListEvents(pb.ListEventsRequest(), timeout=10).events}
                assert kind in seen  # journaled before this reply was sent
                finals[kind] = e
        t.join(60)
        watch.cancel()
    assert set(finals) == {"finished", "dropped"}
    assert [e.sequence for e in watched] == [1, 2, 3]  # replayed the Describe, then followed the session
    kinds = [json.loads(e.json)["kind"] for e in watched]
    assert kinds == ["finished", "dropped", "finished"]
    dropped = json.loads(watched[1].json)
    assert dropped["dropped"]["reason"] == "invalid" and dropped["frame"]["sequence"] == 1
    described = json.loads(watched[2].json)
    assert described["source"].startswith("inspect:") and described["frame"]["sequence"] == 2
    assert [r["role"] for r in described["evidence"]] == ["frame"]  # the raw frame, encoded to JPEG once


def test_without_a_journal_the_event_rpcs_say_how_to_get_one(stub: pb_grpc.InspectorServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stub.ListEvents(pb.ListEventsRequest(), timeout=10)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "state_dir" in err.value.details()


def test_the_event_rpcs_need_the_token_like_every_other(tmp_path: Path, fp32_bundle: Path, engine: Any) -> None:
    token = tmp_path / "tokens"
    token.write_text("s3cret-token\n")
    token.chmod(0o600)
    d = RunningDaemon(serve_config(fp32_bundle, state_dir=tmp_path / "state", token_file=token), engine)
    try:
        with grpc.insecure_channel(d.target) as ch:
            stub = pb_grpc.InspectorServiceStub(ch)
            for call in (
                lambda md: stub.ListEvents(pb.ListEventsRequest(), metadata=md, timeout=10),
                lambda md: list(stub.WatchEvents(pb.WatchEventsRequest(), metadata=md, timeout=10)),
                lambda md: stub.GetEvidence(pb.GetEvidenceRequest(id="0" * 64), metadata=md, timeout=10),
            ):
                with pytest.raises(grpc.RpcError) as err:
                    call([])
                assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
            ok = stub.ListEvents(pb.ListEventsRequest(), metadata=[("authorization", "Bearer s3cret-token")])
            assert ok.head_sequence == 0
    finally:
        d.stop()


def test_below_the_free_space_floor_descriptions_go_on_and_evidence_is_skipped_and_counted(
    tmp_path: Path, fp32_bundle: Path, engine: Any
) -> None:
    cfg = serve_config(fp32_bundle, state_dir=tmp_path / "state", evidence_min_free_bytes=2**62)
    d = RunningDaemon(cfg, engine)
    try:
        with grpc.insecure_channel(d.target) as ch:
            stub = pb_grpc.InspectorServiceStub(ch)
            for i in range(3):
                req = pb.DescribeRequest(images=[pb.Image(encoded=jpeg(i))], prompt="D.", options=OPTS)
                assert stub.Describe(req, timeout=60).token_ids
            events = [json.loads(e.json) for e in stub.ListEvents(pb.ListEventsRequest(), timeout=10).events]
    finally:
        d.stop()
    assert len(events) == 3 and all(e["evidence"] == [] for e in events)
    assert all("evidence_min_free_bytes" in e["evidence_skipped"] for e in events)
    assert d.sample("edge_inspector_evidence_skipped_total", {"class": "normal"}) == 3
    assert not list((tmp_path / "state" / "evidence").rglob("*.jpg"))


def test_edge_events_cli_lists_tails_and_saves_evidence(journaled: RunningDaemon, tmp_path: Path) -> None:
    import subprocess
    import sys

    image = jpeg(3)
    with grpc.insecure_channel(journaled.target) as ch:
        stub = pb_grpc.InspectorServiceStub(ch)
        for part in ("A-1", "A-2"):
            ctx = pb.PartContext(part_id=part)
            stub.Describe(
                pb.DescribeRequest(images=[pb.Image(encoded=image)], prompt="D.", context=ctx, options=OPTS), timeout=60
            )
    edge = [sys.executable, "-m", "edge", "events"]
    target = ["--target", journaled.target]
    out = subprocess.run([*edge, "list", *target], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 2 and "finished" in lines[0] and "A-1" in lines[0] and "A-2" in lines[1]
    assert "next page: --since 2" in out.stderr
    out = subprocess.run([*edge, "list", "--json", "--kind", "dropped", *target], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout == ""
    docs = [json.loads(x) for x in subprocess.check_output([*edge, "list", "--json", *target], text=True).splitlines()]
    frame_id = docs[0]["evidence"][0]["id"]
    saved = tmp_path / "frame.jpg"
    out = subprocess.run([*edge, "evidence", frame_id, "-o", str(saved), *target], capture_output=True, text=True)
    assert out.returncode == 0 and saved.read_bytes() == image and "image/jpeg" in out.stderr
    out = subprocess.run([*edge, "evidence", "f" * 64, "-o", str(saved), *target], capture_output=True, text=True)
    assert out.returncode == 8 and "NOT_FOUND" in out.stderr  # exit code of "anything else" from a daemon

    tail = subprocess.Popen([*edge, "tail", "-n", "1", *target], stdout=subprocess.PIPE, text=True)
    try:
        assert tail.stdout is not None
        assert "A-2" in tail.stdout.readline()  # the last one, then it follows
        with grpc.insecure_channel(journaled.target) as ch:
            ctx = pb.PartContext(part_id="A-3")
            pb_grpc.InspectorServiceStub(ch).Describe(
                pb.DescribeRequest(prompt="D.", context=ctx, options=OPTS), timeout=60
            )
        assert "A-3" in tail.stdout.readline()
    finally:
        tail.kill()
        tail.communicate()
