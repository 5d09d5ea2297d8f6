"""``edge bench --journal``: the event journal and its MQTT publisher against issue 13's targets, same-run ratios.

1. **Journal throughput** by ``synchronous`` (FULL and NORMAL): a burst of appends (group commit: the writer
   commits whatever queued meanwhile as one transaction, one fsync), and one-at-a-time appends that each wait
   for their commit (one fsync per event: the latency a lone decision pays), without commit pacing; and FULL
   with the daemon's pacing, where a client that waits for each commit before the next is held to one
   commit per interval. Target: ≥ 2,000 events/s at FULL.
2. **Cost to the gate**: the image gate of ``edge/gate`` scoring generated frames alone, and with every
   decision journaled (a ``scored`` event; anomalies with their frame, as the camera's JPEG, and map as
   evidence, 1 % of normal frames kept) and published to a local mosquitto by the daemon's publisher process
   (``edge.journal.publisher_process``), in alternating blocks (ABBA) so
   the machine's noise falls on both alike; for good frames only, for a line with about 5 % defective frames,
   and for the test split (about half defective: the stress case); appended as a pulled camera's decisions
   (nobody awaits their commit), with the daemon's commit pacing (the target) and without it (for
   comparison), and with ``mqtt_normal_scores = false`` (paced). Target: frames/s with journaling ≥ 98 % of
   frames/s without on a running line (good frames, and the line with defects; the test split is reported
   beside, not judged): the cost is the median over rounds of each round's own ratio
   (neighbouring blocks share the machine's load, which drifts between rounds). A block is timed until
   its last decision is handed to the journal; the wait for that decision's commit (at most one commit
   interval and an fsync: latency, not throughput) is reported beside it, so a writer falling behind the
   gate would show. The CPU time per frame of the process and of the publisher's process (its threads'
   schedstat, in nanoseconds; medians over rounds) is reported too: what journaling costs where
   the second core is busy (with the model).
3. **Drain after an outage**: 3,000 events (10 minutes at 5 decisions/s) journaled while the broker is
   away, then the publisher's process starts; the time from its connection until the broker acknowledged
   all of them is measured (both as relayed by the process, every 0.1 s; its start-up is reported beside);
   the reference is a bare paho client publishing the same payloads with the same window (QoS 1). Target:
   ≥ 500 messages/s.
"""

from __future__ import annotations

import statistics
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from edge.bench.journal_gate import TARGET_MIXES, gate_cost, gate_frames, wait_for
from edge.bench.mosquitto import Mosquitto
from edge.journal.journal import Journal, JournalSettings
from edge.journal.mqtt import CURSOR
from edge.journal.mqtt_settings import MqttSettings
from edge.journal.publisher_process import PublisherProcess
from edge.journal.records import DroppedBody, Record

TARGET_EVENTS_S = 2000.0
TARGET_COST = 0.02
TARGET_DRAIN_S = 500.0
BACKLOG = 3000  # 10 minutes at 5 decisions/s


def sample_record(i: int) -> Record:
    detail = f"frame {i} waited 5.2 s, over stale_after_seconds (5 s); the description queue is busy"
    return Record(f"inspect:{1 + i % 4}", DroppedBody("stale", detail), i, 1.7e9 + i / 5)


def journal_throughput(work: Path, events: int, serial: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    paced = JournalSettings(work).commit_interval_seconds
    for name, sync, interval in (("FULL", "FULL", 0.0), ("NORMAL", "NORMAL", 0.0), ("FULL paced", "FULL", paced)):
        path = work / f"journal-{sync}-{interval}"
        settings = JournalSettings(path, synchronous=sync, evidence=None, commit_interval_seconds=interval)
        j = Journal(settings)
        recs = [sample_record(i) for i in range(events)]
        t0 = time.perf_counter()
        futures = [j.append(r) for r in recs]
        futures[-1].result()
        burst = events / (time.perf_counter() - t0)
        waits = []
        for r in recs[:serial]:
            t = time.perf_counter()
            j.append(r).result()
            waits.append(time.perf_counter() - t)
        j.close()
        out[name] = {
            "commit_interval_ms": 1e3 * interval,
            "burst_events_s": burst,
            "serial_events_s": serial / sum(waits),
            "commit_ms_p50": 1e3 * statistics.median(waits),
            "commit_ms_p99": 1e3 * float(np.percentile(waits, 99)),
        }
    return out


def drain(work: Path, broker: Mosquitto) -> dict[str, Any]:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    journal = Journal(JournalSettings(work / "journal-drain", floor_cursors=(CURSOR,), evidence=None))
    futures = [journal.append(sample_record(i)) for i in range(BACKLOG)]  # the broker is "away": no publisher
    futures[-1].result()
    payloads = [e.payload.encode() for e in journal.read(0, BACKLOG)]
    pub = PublisherProcess(MqttSettings("127.0.0.1", "line-1", "st-7", port=broker.port), journal)
    t0 = time.perf_counter()
    pub.start()
    wait_for(pub, lambda: pub.connected, "connect to the bench's broker")
    t1 = time.perf_counter()
    start = t1 - t0
    wait_for(pub, lambda: pub.cursor >= BACKLOG, f"publish the {BACKLOG} events of the backlog")
    drained = BACKLOG / (time.perf_counter() - t1)
    pub.stop()
    journal.close()

    acked = threading.Event()
    count = 0

    def on_publish(client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        nonlocal count
        count += 1
        if count == BACKLOG:
            acked.set()

    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-reference")
    client.max_inflight_messages_set(100)
    client.max_queued_messages_set(0)
    client.on_publish = on_publish
    t0 = time.perf_counter()
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    for p in payloads:
        client.publish("bench/reference", p, qos=1)
    acked.wait(120)
    reference = BACKLOG / (time.perf_counter() - t0)
    client.disconnect()
    client.loop_stop()
    return {"backlog": BACKLOG, "drain_msgs_s": drained, "reference_msgs_s": reference, "start_s": start}


def bench_journal(
    work: Path, *, events: int = 20000, serial: int = 300, rounds: int = 50, size: str = "default"
) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    import shutil

    for old in work.glob("journal-*"):
        shutil.rmtree(old)
    report: dict[str, Any] = {"journal": journal_throughput(work, events, serial)}
    gate, mixes = gate_frames(work, size)
    broker = Mosquitto(work / "broker").start()
    try:
        report["gate"] = {}
        # paced (the target); without commit pacing (every commit as soon as the writer is free), for comparison,
        # on the two ends of the mixes; with mqtt_normal_scores = false (normal frames' scores journaled, not
        # published), paced
        variants: tuple[tuple[str, str, dict[str, Any], tuple[str, ...]], ...] = (
            ("", "", {}, tuple(mixes)),
            (", unpaced", "-0", {"interval": 0.0}, ("good", "test")),
            (", normal scores off MQTT", "-n", {"normal_scores": False}, tuple(mixes)),
        )
        for label, folder, options, names in variants:
            for name in names:
                cost = gate_cost(work / (name + folder), gate, mixes[name], rounds, broker, **options)
                report["gate"][name + label] = cost
        report["drain"] = drain(work, broker)
    finally:
        broker.stop()
    report["targets"] = {
        "journal_events_s_full": [report["journal"]["FULL"]["burst_events_s"], TARGET_EVENTS_S],
        "gate_cost": [max(report["gate"][name]["cost"] for name in TARGET_MIXES), TARGET_COST],
        "gate_cost_stress": [report["gate"]["test"]["cost"], TARGET_COST],
        "drain_msgs_s": [report["drain"]["drain_msgs_s"], TARGET_DRAIN_S],
    }
    return report


def format_journal(r: dict[str, Any]) -> str:
    j, d = r["journal"], r["drain"]
    lines = [
        "journal (SQLite WAL, group commit)   burst ev/s   one-at-a-time ev/s   commit p50 / p99 ms",
        *(
            f"  synchronous={s.split()[0]:<6} paced {j[s]['commit_interval_ms']:>2.0f} ms"
            f"    {j[s]['burst_events_s']:>10.0f}   {j[s]['serial_events_s']:>18.0f}"
            f"   {j[s]['commit_ms_p50']:>7.2f} / {j[s]['commit_ms_p99']:.2f}"
            for s in j
        ),
        f"  FULL / NORMAL burst: {j['FULL']['burst_events_s'] / j['NORMAL']['burst_events_s']:.2f}",
        "",
        "gate path (alternating blocks; cost: median of rounds)   frames/s   CPU ms/frame   cost: frames/s   CPU",
    ]
    for name, g in r["gate"].items():
        what = name.replace("good", "good frames").replace("line", "a line with defects").replace("test", "test split")
        lo, hi = g["cost_quartiles"]
        lines += [
            f"  {what} ({g['frame_size'][0]}x{g['frame_size'][1]}, {100 * g['anomalous_share']:.0f} % anomalous, "
            f"{g['frames_per_block']} frames x {g['rounds']})",
            f"    gate alone{' ' * 34}{g['gate_fps']:>8.1f}   {g['gate_cpu_ms_per_frame']:>8.2f}",
            f"    gate + journal + MQTT                       {g['gate_journal_mqtt_fps']:>8.1f}   "
            f"{g['gate_journal_mqtt_cpu_ms_per_frame']:>8.2f}       {100 * g['cost']:>6.2f} %   "
            f"{100 * g['cpu_cost']:>6.2f} %",
            f"    cost per round: quartiles {100 * lo:.1f} .. {100 * hi:.1f} % (gate alone against itself, round to "
            f"round: {100 * g['noise_quartiles'][0]:.1f} .. {100 * g['noise_quartiles'][1]:.1f} %); commits every "
            f"{g['commit_interval_ms']:.0f} ms at most: {g['events_per_commit']:.1f} events per commit, the last "
            f"one waited {g['commit_wait_ms_p50']:.1f} ms (p50)",
        ]
    lines += [
        "",
        f"drain of {d['backlog']} events after an outage: {d['drain_msgs_s']:.0f} msgs/s "
        f"(bare paho, same payloads and window: {d['reference_msgs_s']:.0f} msgs/s; ratio "
        f"{d['drain_msgs_s'] / d['reference_msgs_s']:.2f}); the publisher's process started and connected in "
        f"{d['start_s']:.2f} s",
        "",
        "targets",
    ]
    t = r["targets"]
    ok = {
        "journal_events_s_full": t["journal_events_s_full"][0] >= t["journal_events_s_full"][1],
        "gate_cost": t["gate_cost"][0] <= t["gate_cost"][1],
        "drain_msgs_s": t["drain_msgs_s"][0] >= t["drain_msgs_s"][1],
    }
    verdict = {k: "met" if v else "NOT MET" for k, v in ok.items()}
    lines += [
        f"  journal ≥ {TARGET_EVENTS_S:.0f} events/s at FULL: {verdict['journal_events_s_full']}",
        f"  journal + MQTT ≤ {100 * TARGET_COST:.0f} % of the gate's frames/s on a running line (good frames, and "
        f"a line with defects): {verdict['gate_cost']} ({100 * t['gate_cost'][0]:.2f} %); the test split, as a "
        f"stress case: {100 * t['gate_cost_stress'][0]:.2f} %",
        f"  drain ≥ {TARGET_DRAIN_S:.0f} msgs/s: {verdict['drain_msgs_s']}",
    ]
    return "\n".join(lines)
