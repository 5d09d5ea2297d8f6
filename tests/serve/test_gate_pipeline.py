"""The anomaly gate in front of the model, end to end through the daemon: every frame scored, few described."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path

import cv2
import grpc
import numpy as np
import pytest

from edge.gate import load_gate
from edge.gate.fit import GateFitRequest, fit_gate
from edge.v1 import inspector_pb2 as pb
from edge.v1 import inspector_pb2_grpc as pb_grpc
from tests.gate.anomalib_graphs import anomalib_like
from tests.serve.conftest import RunningDaemon, serve_config

OPTS = pb.GenerationOptions(max_new_tokens=6, max_soft_tokens=70)


def jpeg_file(path: Path) -> bytes:
    return path.read_bytes()


def session(daemon: RunningDaemon, messages: list[pb.InspectRequest]) -> list[pb.InspectResponse]:
    with grpc.insecure_channel(daemon.target, options=[("grpc.max_send_message_length", 8 << 20)]) as ch:
        return list(pb_grpc.InspectorServiceStub(ch).Inspect(iter(messages), timeout=180))


def gated_config(**kw: object) -> pb.InspectRequest:
    return pb.InspectRequest(
        config=pb.InspectConfig(trigger_mode=pb.TRIGGER_MODE_GATED, options=OPTS, prompt="Describe.", **kw)  # type: ignore[arg-type]
    )


def frame(data: bytes, t: float) -> pb.InspectRequest:
    return pb.InspectRequest(frame=pb.Frame(capture_time=t, image=pb.Image(encoded=data)))


@pytest.fixture(scope="module")
def gated(fp32_bundle: Path, engine, fitted_gate: Path, tmp_path_factory: pytest.TempPathFactory):
    state = tmp_path_factory.mktemp("state")  # every decision journaled; every normal frame's evidence kept
    cfg = serve_config(fp32_bundle, gate=fitted_gate, gate_backlog=128, state_dir=state, evidence_normal_sample_rate=1)
    d = RunningDaemon(cfg, engine, load_gate(fitted_gate))
    yield d
    d.stop()


def journaled_since(daemon: RunningDaemon, after: int) -> list[dict]:
    return [json.loads(e.payload) for e in daemon.daemon.journaling.journal.read(after, 10_000)]


def test_100_frames_3_defective_give_3_descriptions_and_97_scored(gated, small_dataset: Path, fitted_gate) -> None:
    gate = load_gate(fitted_gate).image
    assert gate is not None
    goods = sorted((small_dataset / "train/good").glob("*.png")) + sorted((small_dataset / "test/good").glob("*.png"))
    defects = sorted(p for p in (small_dataset / "test").glob("*/*.png") if p.parent.name != "good")

    def label(path: Path) -> bool:
        return gate.score(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)).label

    goods = [p for p in goods if not label(p)]  # the pipeline is under test here, not the gate's accuracy
    defects = [p for p in defects if label(p)][:3]
    assert len(goods) >= 10 and len(defects) == 3
    stream = [goods[i % len(goods)] for i in range(97)]
    for at, path in zip((10, 50, 90), defects, strict=True):
        stream.insert(at, path)
    messages = [gated_config()] + [frame(p.read_bytes(), 100.0 + i / 10) for i, p in enumerate(stream)]
    before = {k: gated.sample("edge_inspector_gate_frames_total", {"label": k}) for k in ("normal", "anomalous")}
    head = gated.daemon.journaling.journal.head
    events = session(gated, messages)
    kinds = Counter(e.WhichOneof("event") for e in events)
    assert kinds["accepted"] == 100 and kinds["scored"] == 97 and kinds["finished"] == 3, kinds
    assert kinds["dropped"] == 0 and kinds["error"] == 0, [e for e in events if e.WhichOneof("event") == "dropped"]
    finished = [e.finished for e in events if e.WhichOneof("event") == "finished"]
    assert sorted(f.frame_sequence for f in finished) == [11, 51, 91]
    for f in finished:  # the description is tied to what the gate saw
        g = f.result.gate
        assert g.kind == pb.GATE_KIND_IMAGE and g.anomalous and g.score > g.threshold == 0.5 and g.gate_id
        assert g.region.x1 > g.region.x0 and g.region.y1 > g.region.y0
    scored = [e.scored for e in events if e.WhichOneof("event") == "scored"]
    assert all(not s.gate.anomalous and s.gate.score <= 0.5 for s in scored)
    after = {k: gated.sample("edge_inspector_gate_frames_total", {"label": k}) for k in ("normal", "anomalous")}
    assert (after["normal"] - before["normal"], after["anomalous"] - before["anomalous"]) == (97, 3)
    # every decision was journaled before it was sent, with what justified it
    docs = journaled_since(gated, head)
    assert Counter(d["kind"] for d in docs) == {"scored": 97, "finished": 3}
    for d in docs:
        roles = sorted(r["role"] for r in d["evidence"])
        assert roles == ["anomaly_map", "frame"], d  # normal frames too: evidence_normal_sample_rate = 1
        assert d["anomalous"] is (d["kind"] == "finished")
    described = sorted(d["frame"]["sequence"] for d in docs if d["kind"] == "finished")
    assert described == [11, 51, 91]
    frame_ids = {d["frame"]["sequence"]: next(r["id"] for r in d["evidence"] if r["role"] == "frame") for d in docs}
    media, data = gated.daemon.journaling.journal.evidence_file(frame_ids[11])
    assert media == "image/png" and data == defects[0].read_bytes()  # the frame as received, byte for byte


def test_the_description_sees_the_close_up_and_the_score(gated, small_dataset: Path, fitted_gate: Path) -> None:
    gate = load_gate(fitted_gate).image
    assert gate is not None
    defect = next(
        p
        for p in sorted((small_dataset / "test").glob("*/*.png"))
        if gate.score(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)).label
    )
    with grpc.insecure_channel(gated.target) as ch:
        stub = pb_grpc.InspectorServiceStub(ch)
        req = pb.DescribeRequest(images=[pb.Image(encoded=defect.read_bytes())], prompt="Describe.", options=OPTS)
        with_gate = stub.Describe(req, timeout=60)
        client = pb.GateResult(score=0.2, anomalous=False, threshold=0.5, gate_id="mine")
        req.gate.CopyFrom(client)  # the caller's own verdict: no close-up, the station gate does not run
        without_crop = stub.Describe(req, timeout=60)
        req.gate.region.CopyFrom(pb.Region(x0=10, y0=10, x1=9999, y1=20))
        with pytest.raises(grpc.RpcError) as err:
            stub.Describe(req, timeout=60)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "gate.region" in err.value.details()
    assert with_gate.gate.anomalous and with_gate.gate.gate_id != "mine"
    assert without_crop.gate.gate_id == "mine" and not without_crop.gate.anomalous
    # the close-up is one more image block (70 soft tokens + 2) and the hint a sentence more
    assert with_gate.timings.prompt_tokens >= without_crop.timings.prompt_tokens + 72


def test_explicit_triggers_carry_the_frame_score(gated, small_dataset: Path) -> None:
    good = sorted((small_dataset / "test/good").glob("*.png"))[0]
    cfg = pb.InspectRequest(config=pb.InspectConfig(trigger_mode=pb.TRIGGER_MODE_EXPLICIT, options=OPTS))
    events = session(gated, [cfg, frame(good.read_bytes(), 1.0)])  # scored on arrival, kept in the buffer
    assert [e.WhichOneof("event") for e in events] == ["accepted", "dropped"]
    events = session(
        gated, [cfg, frame(good.read_bytes(), 1.0), pb.InspectRequest(trigger=pb.Trigger(capture_time=1.0))]
    )
    [finished] = [e.finished for e in events if e.WhichOneof("event") == "finished"]
    # the trigger comes right after the frame, before the gate's verdict: the description waits for it
    assert finished.result.gate.gate_id == load_gate_id(gated) and not finished.result.gate.anomalous


def load_gate_id(d: RunningDaemon) -> str:
    with grpc.insecure_channel(d.target) as ch:
        return pb_grpc.InspectorServiceStub(ch).GetInfo(pb.GetInfoRequest(), timeout=10).gate.gate_id


def test_a_sound_anomaly_is_described_with_its_window(gated, small_dataset: Path) -> None:
    from edge.dataset.sounds import machine_clip

    wave, where = machine_clip(6.0, "knock", np.random.default_rng(3))
    good_frame = sorted((small_dataset / "test/good").glob("*.png"))[0].read_bytes()
    t0 = 1_700_000_000.0
    messages = [gated_config(), frame(good_frame, t0)]
    head = gated.daemon.journaling.journal.head
    for k in range(6):  # six 1 s chunks, contiguous in time
        pcm = (np.clip(wave[k * 16_000 : (k + 1) * 16_000], -1, 1) * 32767).astype("<i2").tobytes()
        audio = pb.Audio(encoding=pb.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16_000, channels=1, data=pcm)
        messages.append(pb.InspectRequest(audio=pb.AudioChunk(capture_time=t0 + k, audio=audio)))
    events = session(gated, messages)
    started = [e.started for e in events if e.WhichOneof("event") == "started"]
    finished = [e.finished for e in events if e.WhichOneof("event") == "finished"]
    sound = [s for s in started if s.gate.kind == pb.GATE_KIND_SOUND]
    assert sound, [e.WhichOneof("event") for e in events]
    (a, b) = where[0]
    for s in sound:  # each anomalous window overlaps the knock
        assert s.gate.anomalous and s.gate.window_start_time < t0 + b and s.gate.window_end_time > t0 + a
        assert s.frame_sequence == 1  # the nearest frame is shown
    assert all(f.frame_sequence == 0 for f in finished)  # the frame itself already ended as scored
    assert [e.WhichOneof("event") for e in events].count("scored") == 1
    sound_docs = [d for d in journaled_since(gated, head) if d["kind"] == "finished"]
    assert len(sound_docs) == len(finished) and all(d["frame"]["sequence"] == 0 for d in sound_docs)
    for d in sound_docs:  # the window the model heard, as WAV
        assert [r["role"] for r in d["evidence"]] == ["audio"] and d["anomalous"] is True


def test_gate_settings_are_checked(gated, fp32_bundle: Path, engine) -> None:
    with grpc.insecure_channel(gated.target) as ch:
        stub = pb_grpc.InspectorServiceStub(ch)
        for value in (0.0, 1.0, float("nan"), -0.2):
            with pytest.raises(grpc.RpcError) as err:
                list(stub.Inspect(iter([gated_config(gate_threshold=value)]), timeout=30))
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert err.value.details().startswith("config.gate_threshold: gate threshold override")
        info = stub.GetInfo(pb.GetInfoRequest(), timeout=10).gate
        assert info.image and info.sound and info.threshold == 0.5 and info.sound_window_seconds > 0
    plain = RunningDaemon(serve_config(fp32_bundle), engine)
    try:
        with grpc.insecure_channel(plain.target) as ch, pytest.raises(grpc.RpcError) as err:
            list(pb_grpc.InspectorServiceStub(ch).Inspect(iter([gated_config()]), timeout=30))
        assert (
            err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            and "GATED needs an image gate" in err.value.details()
        )
    finally:
        plain.stop()


@pytest.mark.parametrize(("score_2d", "batch"), [(False, None), (True, None), (False, 2)])
def test_anomalib_graphs_drop_in(tmp_path: Path, fp32_bundle: Path, engine, score_2d: bool, batch: int | None) -> None:
    model = anomalib_like(tmp_path / "model.onnx", size=(64, 64), batch=batch, score_2d=score_2d)
    folder = tmp_path / "gate"
    fit_gate(folder, GateFitRequest(anomalib_model=model))
    d = RunningDaemon(serve_config(fp32_bundle, gate=folder), engine, load_gate(folder))
    try:
        grey = np.full((96, 128, 3), 128, np.uint8)
        spot = grey.copy()
        spot[40:60, 70:90] = 255  # far from mid-grey: over the graph's threshold
        enc = [cv2.imencode(".png", img)[1].tobytes() for img in (grey, spot, grey)]
        events = session(d, [gated_config()] + [frame(e, float(i)) for i, e in enumerate(enc)])
        kinds = [e.WhichOneof("event") for e in events]
        assert kinds.count("scored") == 2 and kinds.count("finished") == 1, kinds
        [f] = [e.finished for e in events if e.WhichOneof("event") == "finished"]
        assert f.frame_sequence == 2 and f.result.gate.anomalous
        r = f.result.gate.region  # the map's region, back in frame pixels
        assert r.x0 <= 75 and r.x1 >= 85 and r.y0 <= 45 and r.y1 >= 55
    finally:
        d.stop()


def test_a_nan_score_ends_the_frame_as_an_error_and_is_counted(tmp_path: Path, fp32_bundle: Path, engine) -> None:
    model = anomalib_like(tmp_path / "model.onnx", break_="nan")
    folder = tmp_path / "gate"
    fit_gate(folder, GateFitRequest(anomalib_model=model))
    d = RunningDaemon(serve_config(fp32_bundle, gate=folder), engine, load_gate(folder, verify=False))
    try:
        png = cv2.imencode(".png", np.full((64, 64, 3), 128, np.uint8))[1].tobytes()
        events = session(d, [gated_config(), frame(png, 1.0)])
        [error] = [e.error for e in events if e.WhichOneof("event") == "error"]
        assert error.sequence == 1 and "non-finite score" in error.message
        assert d.sample("edge_inspector_requests_total", {"rpc": "Inspect", "code": "OK"}) >= 1
    finally:
        d.stop()


def test_config_dataclass_keeps_the_gate(fp32_bundle: Path) -> None:
    cfg = dataclasses.replace(serve_config(fp32_bundle), gate_threshold=0.7, reference_images=2)
    assert (cfg.gate_threshold, cfg.reference_images) == (0.7, 2)


def test_a_gated_description_is_a_structured_report_tied_to_the_gate(gated, small_dataset: Path, fitted_gate) -> None:
    from edge.station.report import default_report_schema
    from tests.tools import validate_report

    gate = load_gate(fitted_gate).image
    assert gate is not None
    defect = next(
        p
        for p in sorted((small_dataset / "test").glob("*/*.png"))
        if gate.score(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)).label
    )
    options = pb.GenerationOptions(max_soft_tokens=70, structured=True)
    req = pb.DescribeRequest(images=[pb.Image(encoded=defect.read_bytes())], prompt="Report.", options=options)
    with grpc.insecure_channel(gated.target) as ch:
        stub = pb_grpc.InspectorServiceStub(ch)
        first = stub.Describe(req, timeout=120)
        again = stub.Describe(req, timeout=120)
    assert not first.report_error, first.report_error
    validate_report(first.report_json, default_report_schema())  # in decimals, as the daemon
    assert first.gate.anomalous and first.gate.gate_id == load_gate_id(gated) and first.gate.region.x1 > 0
    # greedy on the same inputs (the gate is part of them): the same report, byte for byte
    assert (again.report_json, again.inputs_sha256, again.gate.score) == (
        first.report_json,
        first.inputs_sha256,
        first.gate.score,
    )
