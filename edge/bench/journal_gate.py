"""``edge bench --journal``'s cost to the gate: the image gate scoring frames alone and with every decision
journaled and published, in alternating blocks (the method is in ``edge.bench.journal``'s docstring)."""

from __future__ import annotations

import dataclasses
import itertools
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edge.bench.mosquitto import Mosquitto
from edge.errors import ConfigError
from edge.journal.evidence import EvidenceBudgets
from edge.journal.journal import Journal, JournalSettings
from edge.journal.mqtt import CURSOR
from edge.journal.mqtt_settings import MqttSettings
from edge.journal.publisher_process import PublisherProcess
from edge.journal.records import Evidence, Record, ScoredBody

WAIT_SECONDS = 60.0  # for the publisher process to connect, or to catch up (a drain takes 0.2-0.4 s)

LINE_DEFECTS = 5  # defective frames spread through the good ones in the ``line`` mix: about 5 % at 100 good frames
# The mixes the target is judged on (a running line); ``test``, about half defective, is the stress case beside.
TARGET_MIXES = ("good", "line")


def gate_frames(work: Path, size: str) -> tuple[Any, dict[str, list[np.ndarray]]]:
    """An image gate fitted on the generated data set's good training frames, and three mixes of frames to score:
    ``good`` (held-out good frames: a line running well, 1 % of them kept as samples); ``line`` (the same with
    one defective frame of each of the first ``LINE_DEFECTS`` kinds spread evenly through them: a line with a
    problem, about 5 % defective); and ``test`` (the whole test split, about half of it defective: every
    anomaly keeps its frame and map; a stress case, where a real line would have stopped)."""
    import cv2

    from edge.dataset.writer import write_dataset
    from edge.gate.fit import GateFitRequest, fit_gate
    from edge.gate.load import load_gate

    data, gate_dir = work / f"dataset-{size}", work / f"gate-{size}"
    if not (data / "dataset.json").is_file():
        write_dataset(data, size, seed=0)
    if not (gate_dir / "manifest.json").is_file():
        fit_gate(gate_dir, GateFitRequest(good_images=data / "train" / "good"))

    def read(paths: list[Path]) -> list[np.ndarray]:
        bgr = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in paths]
        return [np.ascontiguousarray(b[..., ::-1]) for b in bgr if b is not None]

    test = sorted((data / "test").rglob("*.png"))
    good = sorted((data / "test" / "good").glob("*.png"))
    kinds = sorted({p.parent.name for p in test} - {"good"})[:LINE_DEFECTS]
    defects = [next(p for p in test if p.parent.name == kind) for kind in kinds]
    line = list(good)
    for i, path in enumerate(defects):  # evenly spread, in the order of their kinds
        line.insert((2 * i + 1) * len(line) // (2 * len(defects)), path)
    return load_gate(gate_dir).image, {"good": read(good), "line": read(line), "test": read(test)}


def gate_cost(
    work: Path,
    gate: Any,
    frames: list[np.ndarray],
    rounds: int,
    broker: Mosquitto,
    interval: float | None = None,
    normal_scores: bool = True,
) -> dict[str, Any]:
    """Frames/s of the gate alone and with journaling + MQTT (the journal's thread and the publisher's process
    free to use the second core, as on an idle station), and the CPU time of both processes per frame (what
    the journal costs where the cores are busy with the model). ``normal_scores``: ``mqtt_normal_scores``."""
    settings = JournalSettings(
        work / "journal-gate", floor_cursors=(CURSOR,), origin=("line-1", "st-7"), evidence=EvidenceBudgets()
    )
    if interval is not None:  # the daemon's defaults otherwise (the camera's interval: these are camera decisions)
        settings = dataclasses.replace(settings, commit_interval_seconds=interval, unawaited_interval_seconds=interval)
    journal = Journal(settings)
    mqtt = MqttSettings("127.0.0.1", "line-1", "st-7", port=broker.port, normal_scores=normal_scores)
    pub = PublisherProcess(mqtt, journal)
    pub.start()
    wait_for(pub, lambda: pub.connected, "connect to the bench's broker")
    anomalies = appended = 0  # this call's: the journal folder may hold earlier runs' events

    import cv2

    # The frames as a camera sends them (JPEG): the evidence is those bytes, stored as received.
    received = [cv2.imencode(".jpg", f[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes() for f in frames]

    def block(journaled: bool) -> tuple[float, float, float]:
        nonlocal anomalies, appended
        last = None
        t0, c0 = time.perf_counter(), time.process_time() + child_cpu(pub.pid)
        for i, frame in enumerate(frames):
            r = gate.score(frame)
            if journaled:
                ev = Evidence(frame=received[i], anomaly_map=r.anomaly_map if r.label else None)
                body = ScoredBody(r.score, r.label, r.threshold, r.gate_id, r.region, r.latency_s)
                rec = Record("camera:1", body, i + 1, time.time(), anomalous=r.label, evidence=ev)
                last = journal.append(rec, awaited=False)  # as a pulled camera's decisions
                anomalies += int(r.label)
                appended += 1
        fps = len(frames) / (time.perf_counter() - t0)
        cpu = (time.process_time() + child_cpu(pub.pid) - c0) / len(frames)
        # The last decisions' commit (at most one commit interval and an fsync) is latency, not throughput:
        # it is waited for untimed and reported, so a writer falling behind the gate would show here. So is
        # what the publisher still has in flight (a few events, up to one loop interval): the next block
        # starts from rest.
        t1 = time.perf_counter()
        if last is not None:
            last.result()
        flush = time.perf_counter() - t1
        wait_for(pub, lambda: pub.cursor >= journal.head, f"publish up to event {journal.head}")
        return fps, cpu, flush

    block(False), block(True)  # warm-up: onnxruntime, OpenCV, SQLite pages, the broker connection
    plain: list[tuple[float, float, float]] = []
    journaled: list[tuple[float, float, float]] = []
    for k in range(rounds):  # ABBA: neither mode always runs first
        for mode in (False, True) if k % 2 == 0 else (True, False):
            (journaled if mode else plain).append(block(mode))
    published, commits = pub.cursor, journal.commits
    pub.stop()
    journal.close()
    fps = statistics.median(x[0] for x in plain), statistics.median(x[0] for x in journaled)
    cpu = statistics.median(x[1] for x in plain), statistics.median(x[1] for x in journaled)
    # The cost is the median of each round's own ratio: the machine's load drifts between rounds, and a pair
    # of neighbouring blocks sees the same load.
    ratios = [b[0] / a[0] for a, b in zip(plain, journaled, strict=True)]
    noise = [b[0] / a[0] for a, b in itertools.pairwise(plain)]
    return {
        "frame_size": list(frames[0].shape[1::-1]),
        "frames_per_block": len(frames),
        "rounds": rounds,
        "gate_fps": fps[0],
        "gate_journal_mqtt_fps": fps[1],
        "cost": 1 - statistics.median(ratios),
        "cost_of_medians": 1 - fps[1] / fps[0],
        "cost_quartiles": [1 - float(q) for q in np.percentile(ratios, [75, 25])],
        # The same statistic between the gate-alone blocks of neighbouring rounds (nothing differs): the noise.
        "noise_quartiles": [1 - float(q) for q in np.percentile(noise, [75, 25])],
        "commit_wait_ms_p50": 1e3 * statistics.median(x[2] for x in journaled),
        "gate_cpu_ms_per_frame": 1e3 * cpu[0],
        "gate_journal_mqtt_cpu_ms_per_frame": 1e3 * cpu[1],
        "cpu_cost": cpu[1] / cpu[0] - 1,
        "events_journaled": appended,
        "events_published": published,
        "commit_interval_ms": 1e3 * settings.unawaited_interval,
        "events_per_commit": appended / max(commits, 1),
        "anomalous_share": anomalies / max(appended, 1),
    }


def wait_for(pub: PublisherProcess, done: Callable[[], bool], what: str, timeout: float = WAIT_SECONDS) -> None:
    """Poll ``done`` every millisecond; a publisher process that does not get there within ``timeout`` ends the
    bench with an error (its own log lines, on stderr above, say why) instead of a hang."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            pub.stop(timeout=2.0)
            raise ConfigError(
                f"edge bench --journal: the MQTT publisher process did not {what} within {timeout:.0f} s "
                f"(connected: {pub.connected}, acknowledged up to event {pub.cursor}, restarted {pub.restarts} "
                "times); its log lines above say why"
            )
        time.sleep(0.001)


def child_cpu(pid: int | None) -> float:
    """CPU seconds of the publisher's process so far (its threads' time on a CPU, in nanoseconds from each
    thread's schedstat; /proc's user and system times come in 10 ms ticks); 0 if there is none."""
    if pid is None:
        return 0.0
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0
    for tid in tasks:
        try:
            total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue  # a thread that just ended
    return total / 1e9
