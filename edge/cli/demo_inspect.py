"""The demo's inspection loop: a gate fitted on generated good parts, then a gated Inspect session streaming
frames (a few defective) and machine sound (with a knock); every frame's score, and for the anomalies the region
and the structured report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edge.cli.demo_daemon import Daemon

SOUND_KNOCK_SEED = 3


def fit_demo_gate(work: Path, say: Any, size: str) -> tuple[Path, Path]:
    """The generated data set and a gate fitted on its good parts (both reused when already there and intact)."""
    import json

    from edge.build.progress import Progress
    from edge.dataset.writer import file_count, write_dataset
    from edge.errors import GateError
    from edge.gate.fit import GateFitRequest, fit_gate
    from edge.gate.manifest import verify_gate

    data, gate = work / f"dataset-{size}", work / f"gate-{size}"
    # about 20 s the first time: a progress line every few seconds (nothing when both are reused)
    if not (data / "dataset.json").is_file() or json.loads((data / "dataset.json").read_text()).get("size") != size:
        with Progress("generate the parts and sounds", total=file_count(size), unit="file") as bar:
            write_dataset(data, size, seed=0, on_file=bar.update)
    try:
        manifest = verify_gate(gate)
        reused = " (already fitted: reused)"
    except GateError:
        with Progress("fit the gate on the good parts", total=1, unit="gate") as bar:
            request = GateFitRequest(good_images=data / "train/good", good_sounds=data / "sound/train/good", force=True)
            manifest = fit_gate(gate, request)
            bar.update(1)
        reused = ""
    goods = len(list((data / "train/good").iterdir()))
    say.result(
        f"data set {data}/ (MVTec AD layout: train/good, test/<defect>, ground_truth, sound/)\n"
        f"gate {manifest.gate_id} in {gate}/{reused}: image variation model with registration, and a sound "
        f"model; fitted on {goods} good frames and the good recordings"
    )
    return data, gate


def _stream(data: Path) -> list[tuple[str, bytes]]:
    """Twenty frames in line order: good parts, and one part of each defect kind every third frame."""
    goods = sorted((data / "test/good").glob("*.png"))
    kinds = sorted(p.name for p in (data / "test").iterdir() if p.name != "good")
    defects = [sorted((data / "test" / k).glob("*.png"))[0] for k in kinds]
    frames: list[tuple[str, bytes]] = []
    for i in range(20):
        if i % 3 == 2 and defects:
            path = defects.pop(0)
            frames.append((path.parent.name, path.read_bytes()))
        else:
            path = goods[i % len(goods)]
            frames.append(("good", path.read_bytes()))
    return frames


def inspection_loop(daemon: Daemon, data: Path, say: Any) -> None:
    import grpc

    from edge.cli.safe_text import for_terminal
    from edge.dataset.sounds import machine_clip
    from edge.v1 import inspector_pb2 as pb
    from edge.v1 import inspector_pb2_grpc as pb_grpc

    frames = _stream(data)
    wave, knock = machine_clip(6.0, "knock", np.random.default_rng(SOUND_KNOCK_SEED))
    t0 = 1_700_000_000.0
    messages = [
        pb.InspectRequest(
            config=pb.InspectConfig(
                trigger_mode=pb.TRIGGER_MODE_GATED,
                prompt="Describe any defect in this part.",
                options=pb.GenerationOptions(structured=True, max_soft_tokens=70),
                context=pb.PartContext(station_id="demo-station", line_id="line-1"),
            )
        )
    ]
    sent: list[str] = []  # what each accepted sequence number is
    for i, (kind, data_) in enumerate(frames):  # 0.3 s apart: 6 s of line
        t = t0 + 0.3 * i
        messages.append(pb.InspectRequest(frame=pb.Frame(capture_time=t, image=pb.Image(encoded=data_))))
        sent.append(f"frame, {kind}")
        if i % 3 == 0:  # a 1 s audio chunk every 0.9 s of frames keeps the sound ahead of the pictures
            k = i // 3
            pcm = (wave[k * 16_000 : (k + 1) * 16_000] * 32767).astype("<i2").tobytes()
            if pcm:
                audio = pb.Audio(encoding=pb.AUDIO_ENCODING_PCM_S16LE, sample_rate_hz=16_000, channels=1, data=pcm)
                messages.append(pb.InspectRequest(audio=pb.AudioChunk(capture_time=t0 + k, audio=audio)))
                sent.append("audio")
    (a, b) = knock[0]
    say.note(
        f"{len(frames)} frames of parts on the line (one of each defect kind every third frame) and 6 s of "
        f"machine sound with a bearing knock at {a:.1f}-{b:.1f} s, in one Inspect session in TRIGGER_MODE_GATED. "
        "Every frame is scored on arrival; only the ones over the threshold go to the model, which answers "
        "with a structured report (options.structured: the built-in inspection-report schema)."
    )
    kinds: dict[int, str] = {}
    passed = flagged = reports = 0
    missed: list[str] = []
    with grpc.insecure_channel(f"127.0.0.1:{daemon.port}") as channel:
        for ev in pb_grpc.InspectorServiceStub(channel).Inspect(iter(messages), timeout=600):
            what = ev.WhichOneof("event")
            if what == "accepted":
                kinds[ev.accepted.sequence] = sent[len(kinds)]
            elif what == "scored":
                passed += 1
                s = ev.scored
                if not kinds[s.sequence].endswith("good"):
                    missed.append(kinds[s.sequence].split(", ")[1])
                say.result(f"{kinds[s.sequence]:<26} score {s.gate.score:4.2f}  passed")
            elif what == "started" and ev.started.gate.kind == pb.GATE_KIND_SOUND:
                g = ev.started.gate
                window = f"sound {g.window_start_time - t0:.1f}-{g.window_end_time - t0:.1f} s"
                say.result(
                    f"{window:<26} score {g.score:4.2f}  ANOMALY: described with the nearest frame "
                    f"({ev.started.frame_sequence})"
                )
            elif what == "started":
                flagged += 1
                g, r = ev.started.gate, ev.started.gate.region
                say.result(
                    f"{kinds[ev.started.frame_sequence]:<26} score {g.score:4.2f}  ANOMALY at x {r.x0}-{r.x1}, "
                    f"y {r.y0}-{r.y1}: the model gets the frame, a close-up and the score"
                )
            elif what == "finished":
                res, seq = ev.finished.result, ev.finished.frame_sequence
                reports += 1
                g = res.gate
                about = kinds[seq] if seq else f"sound {g.window_start_time - t0:.1f}-{g.window_end_time - t0:.1f} s"
                line = _report_line(res.report_json) or f"no report: {res.report_error}"
                say.result(f"    {about}: " + for_terminal(line))
            elif what in ("dropped", "error"):
                say.result(f"{what}: {for_terminal(str(getattr(ev, what)).strip())}")
    misses = (
        f" ({len(missed)} of them defective: {', '.join(missed)}; `edge gate eval` measures the gate)" if missed else ""
    )
    say.note(
        f"{passed} frames passed the gate and ended as `scored` events{misses}; {flagged} went to the model with "
        f"their region; {reports} structured reports in all (sound included). The toy model was never shown real "
        "pictures, so what its reports say is not about these parts: the gate's scores and regions are real, and every "
        "report is valid against its schema whatever the model writes."
    )


def _report_line(report_json: str) -> str:
    """The built-in report's fields on two short lines (the JSON itself is what a line controller reads)."""
    import json

    if not report_json:
        return ""
    r = json.loads(report_json)
    where = r["location"]["region"] + (f" {r['location']['box']}" if "box" in r["location"] else "")
    desc = r["description"] if len(r["description"]) <= 90 else r["description"][:89] + "…"
    return (
        f"report: anomaly {str(r['anomaly']).lower()}, {r['defect_type']} at {where}, {r['severity']}, "
        f"confidence {r['confidence']}, action: {r['recommended_action']}\n"
        f"        description: {desc}"
    )
