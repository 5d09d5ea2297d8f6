"""Evidence files: as received or encoded once, budgets per class, the random share, the free-space floor."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import cv2
import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from edge.errors import NotFoundError
from edge.journal.evidence import EvidenceBudgets, _map16
from edge.journal.journal import Journal, JournalSettings
from edge.journal.records import DroppedBody, Evidence, FinishedBody, Record, ScoredBody
from edge.runtime.image import ImageLimits, PixelFormat
from edge.serve.metrics import Metrics
from edge.station.admission import encoded_image, raw_frame
from tests.journal.test_journal import Clock


def finished(i: int) -> FinishedBody:
    return FinishedBody(i, "ok", "", "", "end_of_turn", "", "", 0.0, 1.0, 10, 2)


def noise(seed: int, size: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def journal(tmp_path: Path, budgets: EvidenceBudgets, clock: Clock | None = None) -> tuple[Journal, CollectorRegistry]:
    registry = CollectorRegistry()
    settings = JournalSettings(tmp_path, evidence=budgets)
    return Journal(settings, metrics=Metrics(registry), clock=clock or Clock(1_000_000.0)), registry


def payload(j: Journal, seq: int) -> dict:
    return json.loads(j.read(seq - 1, 1)[0].payload)


def test_frames_are_kept_as_received_and_raw_frames_are_encoded_once(tmp_path: Path) -> None:
    j, _ = journal(tmp_path, EvidenceBudgets(min_free_bytes=0))
    _, jpg = cv2.imencode(".jpg", noise(1))
    limits = ImageLimits()
    as_received = encoded_image(jpg.tobytes(), "frame.image.encoded", limits)
    raw = raw_frame(noise(2).tobytes(), 64, 64, None, PixelFormat.RGB8, "frame.image.raw", limits)
    a = j.append(Record("inspect:1", finished(1), 1, evidence=Evidence(frame=as_received))).result(30)
    b = j.append(Record("inspect:1", finished(2), 2, evidence=Evidence(frame=raw, report='{"anomaly":false}')))
    (ref,) = payload(j, a)["evidence"]
    assert ref["id"] == hashlib.sha256(jpg.tobytes()).hexdigest() and ref["media_type"] == "image/jpeg"
    assert j.evidence_file(ref["id"]) == ("image/jpeg", jpg.tobytes())  # byte for byte
    frame, report = payload(j, b.result(30))["evidence"]
    media, data = j.evidence_file(frame["id"])
    assert media == "image/jpeg" and cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).shape == (64, 64, 3)
    assert j.evidence_file(report["id"]) == ("application/json", b'{"anomaly":false}')
    with pytest.raises(NotFoundError, match="64 hex digits"):
        j.evidence_file("../../etc/passwd")
    j.close()


def test_anomaly_maps_are_16_bit_pngs_with_out_of_range_scores_saturated_and_removed_folders_made_again(
    tmp_path: Path,
) -> None:
    j, _ = journal(tmp_path, EvidenceBudgets(min_free_bytes=0))
    scores = np.array([[[np.nan, np.inf, -np.inf, -3.0, 0.5, 2.0, 1.0, 0.0, 1 / 3, 0.25]]], np.float32)
    seq = j.append(Record("inspect:1", finished(1), 1, anomalous=True, evidence=Evidence(anomaly_map=scores)))
    (ref,) = payload(j, seq.result(30))["evidence"]
    media, data = j.evidence_file(ref["id"])
    levels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert media == "image/png" and levels.dtype == np.uint16 and levels.shape == (1, 10)
    assert levels[0].tolist() == [0, 65535, 0, 0, 32768, 65535, 65535, 0, 21845, 16384]  # nearest level
    for folder in (tmp_path / "evidence").iterdir():  # an operator clearing evidence by hand
        for f in folder.iterdir():
            f.unlink()
        folder.rmdir()
    seq = j.append(Record("inspect:1", finished(2), 2, anomalous=True, evidence=Evidence(anomaly_map=scores)))
    event = payload(j, seq.result(30))
    assert "evidence_skipped" not in event and j.evidence_file(event["evidence"][0]["id"]) == (media, data)
    j.close()


def test_a_gate_sized_map_is_kept_level_for_level(tmp_path: Path) -> None:
    """The map's PNG options (run-length strategy, no row filter) are lossless on a gate's 256 × 192 map: zero
    outside a defect, every level inside it."""
    j, _ = journal(tmp_path, EvidenceBudgets(min_free_bytes=0))
    scores = np.zeros((192, 256), np.float32)
    scores[40:120, 60:200] = np.random.default_rng(3).random((80, 140), dtype=np.float32)
    seq = j.append(Record("inspect:1", finished(1), 1, anomalous=True, evidence=Evidence(anomaly_map=scores)))
    (ref,) = payload(j, seq.result(30))["evidence"]
    levels = cv2.imdecode(np.frombuffer(j.evidence_file(ref["id"])[1], np.uint8), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(levels, _map16(scores))  # exactly the levels the store encoded
    j.close()


def test_byte_budgets_per_class_keep_anomalies_when_normal_samples_overflow(tmp_path: Path) -> None:
    clock = Clock(1_000_000.0)
    budgets = EvidenceBudgets(
        anomaly_max_bytes=400_000, normal_max_bytes=150_000, normal_sample_rate=1.0, min_free_bytes=0
    )
    j, registry = journal(tmp_path, budgets, clock)
    anomalies = []
    for i in range(1, 401):  # ~12 KB of PNG noise each: normal far over its budget, anomalies within theirs
        anomalous = i % 20 == 0
        frame = cv2.imencode(".png", noise(i))[1].tobytes()
        r = Record("inspect:1", finished(i), i, anomalous=anomalous, evidence=Evidence(frame=frame))
        seq = j.append(r).result(30)
        if anomalous:
            anomalies.append(payload(j, seq)["evidence"][0]["id"])
        clock.t += 1.0  # retention runs every 10 s of this clock
        normal = registry.get_sample_value("edge_inspector_evidence_bytes", {"class": "normal"})
        assert normal is not None and normal <= 150_000 + 13_000 * 10  # at most one prune interval over
    j.close()  # prunes once more
    files = [p for p in (tmp_path / "evidence").rglob("*.png")]
    sizes = {p.stem: p.stat().st_size for p in files}
    assert set(anomalies) <= set(sizes)  # every anomaly kept
    normal_bytes = sum(s for k, s in sizes.items() if k not in anomalies)
    assert 0 < normal_bytes <= 150_000
    j, _ = journal(tmp_path, budgets, clock)
    first = payload(j, 1)["evidence"][0]["id"]
    with pytest.raises(NotFoundError, match="removed by retention"):
        j.evidence_file(first)
    assert j.store.bounds() == (1, 400)  # the events stay; only their evidence went
    j.close()


def test_normal_gate_decisions_keep_only_a_random_share_of_frames(tmp_path: Path) -> None:
    j, _ = journal(tmp_path, EvidenceBudgets(normal_sample_rate=0.1, min_free_bytes=0))
    assert j.evidence is not None
    j.evidence.rng = random.Random(7)
    kept = 0
    for i in range(1, 301):
        body = ScoredBody(0.1, False, 0.5, "g")
        seq = j.append(Record("cam:1", body, i, anomalous=False, evidence=Evidence(frame=noise(i, 16)))).result(30)
        kept += bool(payload(j, seq)["evidence"])
    seq = j.append(Record("cam:1", ScoredBody(0.9, True, 0.5, "g"), 301, anomalous=True, evidence=Evidence(noise(9))))
    assert payload(j, seq.result(30))["evidence"]  # an anomaly always keeps its frame
    j.close()
    assert 15 <= kept <= 50  # 10 % of 300, seeded


def test_below_the_free_space_floor_evidence_is_skipped_and_counted_while_decisions_go_on(tmp_path: Path) -> None:
    j, registry = journal(tmp_path, EvidenceBudgets(min_free_bytes=2**62))  # far above any real disk's free space
    for i in range(1, 21):
        anomalous = i % 2 == 0
        ev = Evidence(frame=noise(i), anomaly_map=np.zeros((8, 8), np.float32), report="{}")
        assert j.append(Record("inspect:1", finished(i), i, anomalous=anomalous, evidence=ev)).result(30) == i
    j.append(Record("inspect:1", DroppedBody("stale"), 21)).result(30)
    events = [json.loads(e.payload) for e in j.read(0, 100)]
    j.close()
    assert len(events) == 21 and all(not e["evidence"] for e in events)
    assert all("below evidence_min_free_bytes" in e["evidence_skipped"] for e in events[:20])
    assert "evidence_skipped" not in events[20]  # nothing to store: nothing skipped
    for cls in ("anomaly", "normal"):
        assert registry.get_sample_value("edge_inspector_evidence_skipped_total", {"class": cls}) == 10
    assert registry.get_sample_value("edge_inspector_evidence_free_floor_bytes") == 2**62
    assert not list((tmp_path / "evidence").rglob("*.*"))


@pytest.mark.parametrize("path", ["syncfs", "fsync per file", "sync fails"])
def test_evidence_is_synced_once_per_commit_and_a_failed_sync_loses_no_decision(
    tmp_path: Path, path: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from edge.journal import evidence as ev

    synced: list[Path] = []
    real = ev._syncfs

    def syncfs(folder: Path) -> bool:
        if path == "sync fails":
            raise OSError(5, "Input/output error")
        synced.append(folder)
        return real(folder) if path == "syncfs" else False  # False: fall back to an fsync per file

    monkeypatch.setattr(ev, "_syncfs", syncfs)
    j, _ = journal(tmp_path, EvidenceBudgets(min_free_bytes=0))
    futures = [
        j.append(Record("camera:1", finished(i), i, anomalous=True, evidence=Evidence(frame=noise(i))))
        for i in range(1, 6)
    ]
    seqs = [f.result(30) for f in futures]
    commits = j.commits
    j.close()
    assert seqs == [1, 2, 3, 4, 5]  # every decision committed, whatever the sync did
    reopened, _ = journal(tmp_path, EvidenceBudgets(min_free_bytes=0))
    for seq in seqs:
        (ref,) = payload(reopened, seq)["evidence"]
        assert reopened.evidence_file(ref["id"])[0] == "image/jpeg"
    reopened.close()
    if path == "sync fails":
        assert "may not be durable: Input/output error" in caplog.text
    else:
        assert len(synced) == commits and set(synced) == {tmp_path / "evidence"}  # once per commit, not per file
