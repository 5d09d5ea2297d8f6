"""``kill -9`` of a real ``edge serve`` in the middle of a burst of decisions, then a restart: every journaled
event reaches a real mosquitto, none is missing, repeats carry the same sequence, and the last will said
``offline`` meanwhile."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
from pathlib import Path

import grpc
import pytest

from edge.v1 import inspector_pb2 as pb
from edge.v1 import inspector_pb2_grpc as pb_grpc
from tests.journal.broker import Broker, Subscriber, first_occurrences
from tests.serve.test_lifecycle import start

WAIT = 120.0  # a deadline for a broken run, not a speed requirement


def burst(port: int, answered: list[str], stop: threading.Event) -> None:
    """Describe calls back to back, each with its part id, until the daemon is gone."""
    img = pb.Image(raw=pb.RawImage(width=16, height=16, format=pb.PIXEL_FORMAT_GRAY8, data=bytes(range(256))))
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        stub = pb_grpc.InspectorServiceStub(ch)
        i = 0
        while not stop.is_set():
            i += 1
            ctx = pb.PartContext(station_id="st-7", part_id=f"p{i}")
            req = pb.DescribeRequest(
                images=[img], prompt="D.", context=ctx, options=pb.GenerationOptions(max_new_tokens=2)
            )
            try:
                stub.Describe(req, timeout=30)
            except grpc.RpcError:
                return
            answered.append(f"p{i}")


@pytest.mark.slow
def test_kill_9_mid_burst_then_every_journaled_event_reaches_the_broker(fp32_bundle: Path, tmp_path: Path) -> None:
    broker = Broker(tmp_path / "broker").start()
    sub = Subscriber(broker, "edge-inspector/line-1/st-7/#")
    state = tmp_path / "state"
    flags = ("--state-dir", str(state), "--line-id", "line-1", "--station-id", "st-7", "--no-warmup")
    flags += ("--mqtt-host", "127.0.0.1", "--mqtt-port", str(broker.port))
    proc, port = start(fp32_bundle, *flags)
    answered: list[str] = []
    stop = threading.Event()
    client = threading.Thread(target=burst, args=(port, answered, stop))
    restarted = None
    try:
        client.start()
        sub.wait(lambda: len(answered) >= 40 and len(sub.events()) >= 10, WAIT, "the burst did not get going")
        os.kill(proc.pid, signal.SIGKILL)  # mid-burst: descriptions, commits and publishes in flight
        proc.wait(30)
        stop.set()
        client.join(60)
        status = [p for t, p, _ in sub.messages if t.endswith("/status")]
        sub.wait(lambda: b"offline" in [p for t, p, _ in sub.messages if t.endswith("/status")], WAIT, "no last will")
        assert status and status[0] == b"online"

        conn = sqlite3.connect(state / "journal.db")
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute("SELECT seq, payload FROM events ORDER BY seq").fetchall()
        conn.close()
        journaled = {seq: payload.encode() for seq, payload in rows}
        parts = {json.loads(p)["context"]["part_id"] for p in journaled.values()}
        assert set(answered) <= parts  # every answer the client got was journaled first
        assert list(journaled) == list(range(1, len(journaled) + 1))

        restarted, _ = start(fp32_bundle, *flags)
        sub.wait(lambda: set(journaled) <= {e["sequence"] for e in sub.events()}, WAIT, "journaled events missing")
    finally:
        stop.set()
        for p in (proc, restarted):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(60)
            if p is not None:
                p.communicate()
        sub.close()
        broker.stop()
    for payload in sub.payloads():  # a repeat carries the same sequence and the same bytes as the journal
        assert journaled[json.loads(payload)["sequence"]] == payload
    order = first_occurrences(sub.events())
    assert order == sorted(order)  # published in sequence order, across the crash
    assert [p for t, p, _ in sub.messages if t.endswith("/status")][-1] == b"offline"  # the clean stop's
