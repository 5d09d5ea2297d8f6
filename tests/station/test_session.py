"""The session core as a state machine: inputs with a fake clock in, the exact event sequence out. No server."""

from __future__ import annotations

import numpy as np
import pytest

from edge.errors import EngineError, FieldError
from edge.station.events import Accepted, Dropped, DropReason, Failed, Finished, Started, Token, is_final_for_frame
from edge.station.inputs import AudioIn, FrameIn, PartContext, SessionLimits, SessionSettings, TriggerIn, TriggerMode
from edge.station.session import Cancel, Ended, SessionCore, Submit
from edge.station.worker import JobCancelled, JobDone, JobFailed, JobSkipped, JobStarted, JobToken, Skip


class Img:
    """A pending image as the core sees it (it never decodes: that is the engine thread's job)."""

    field, width, height, kind, data = "frame.image", 64, 48, "raw 64x48", bytes(64 * 48 * 3)

    def decode(self) -> np.ndarray:
        return np.zeros((48, 64, 3), np.uint8)


def core(mode: TriggerMode = TriggerMode.EXPLICIT, **kw: object) -> SessionCore:
    settings = SessionSettings(mode=mode, prompt="Describe.", params=None, **kw)  # type: ignore[arg-type]
    return SessionCore(settings, SessionLimits(frame_buffer=3, audio_buffer_seconds=10, stale_after_seconds=5), 0.0)


def frame(t: float) -> FrameIn:
    return FrameIn(t, Img())


def test_trigger_describes_the_nearest_frame_and_the_buffer_supersedes_the_oldest() -> None:
    c = core(stream_tokens=True)
    out = [o for t in range(5) for o in c.frame(frame(100.0 + t), now=t)]
    assert out == [
        Accepted(1, 100.0),
        Accepted(2, 101.0),
        Accepted(3, 102.0),
        Accepted(4, 103.0),
        Dropped(1, 100.0, DropReason.SUPERSEDED),
        Accepted(5, 104.0),
        Dropped(2, 101.0, DropReason.SUPERSEDED),
    ]
    assert c.trigger(TriggerIn(102.9), now=5.0) == [Submit(1)]
    request = c.claim(1, now=5.5)
    assert request.prompt == "Describe." and len(request.images) == 1 and request.audio == []
    assert c.job_event(1, JobStarted()) == [Started(1, 4, 103.0, 102.9)]
    assert c.job_event(1, JobToken(7, "ok")) == [Token(1, 7, "ok")]
    [finished] = c.job_event(1, JobDone(outcome="o"))  # type: ignore[arg-type]
    assert finished == Finished(1, 4, "o", PartContext())
    assert c.close() == [
        Dropped(3, 102.0, DropReason.SUPERSEDED, "the stream ended before this frame was described"),
        Dropped(5, 104.0, DropReason.SUPERSEDED, "the stream ended before this frame was described"),
        Ended("OK"),
    ]
    assert c.ended


def test_a_frame_that_waited_past_the_limit_is_skipped_as_stale() -> None:
    c = core()
    c.frame(frame(1.0), now=0.0)
    assert c.trigger(TriggerIn(None), now=0.1) == [Submit(1)]
    with pytest.raises(Skip) as skip:
        c.claim(1, now=5.01)
    assert skip.value.reason is DropReason.STALE and "waited 5.01 s" in skip.value.detail
    assert c.job_event(1, JobSkipped(skip.value.reason, skip.value.detail)) == [
        Dropped(1, 1.0, DropReason.STALE, skip.value.detail)
    ]


def test_interval_mode_ticks_only_when_due_and_nothing_of_ours_waits() -> None:
    c = core(TriggerMode.INTERVAL, interval_seconds=2.0)
    assert c.next_tick == 2.0 and c.tick(1.9) == []
    assert c.tick(2.0) == []  # due, but no frame yet
    c.frame(frame(10.0), now=2.5)
    assert c.next_tick == 4.0 and c.tick(4.0) == [Submit(1)]
    c.frame(frame(11.0), now=4.5)
    assert c.tick(6.0) == []  # job 1 has not started: no second description piles up
    c.claim(1, now=6.1)
    assert c.tick(8.0) == [Submit(2)]
    # interval mode keeps one frame: a newer one supersedes the buffered one
    assert c.frame(frame(12.0), now=8.1) == [Accepted(3, 12.0)]
    assert c.frame(frame(13.0), now=8.2) == [Accepted(4, 13.0), Dropped(3, 12.0, DropReason.SUPERSEDED)]


def test_trigger_without_a_frame_and_a_refused_submission() -> None:
    c = core()
    assert c.trigger(TriggerIn(5.0), now=0.0) == [
        Dropped(0, 5.0, DropReason.NO_FRAME, "trigger with no frame buffered")
    ]
    c.frame(frame(5.0), now=0.0)
    assert c.trigger(TriggerIn(5.0), now=0.1) == [Submit(1)]
    assert c.rejected(1, DropReason.QUEUE_FULL, "full") == [Dropped(1, 5.0, DropReason.QUEUE_FULL, "full")]


def test_decode_failure_is_an_invalid_drop_and_engine_failure_ends_the_frame_as_failed() -> None:
    c = core()
    c.frame(frame(1.0), now=0.0)
    c.frame(frame(2.0), now=0.0)
    c.trigger(TriggerIn(1.0), now=0.0)
    c.trigger(TriggerIn(2.0), now=0.0)
    bad = FieldError("frame.image.encoded", "cannot decode the PNG image")
    assert c.job_event(1, JobFailed(bad)) == [Dropped(1, 1.0, DropReason.INVALID, str(bad))]
    broken = EngineError("onnxruntime failed")
    [failed] = c.job_event(2, JobFailed(broken))
    assert failed == Failed(broken, sequence=2) and is_final_for_frame(failed)


def test_refused_inputs_name_the_field_and_count_as_frames() -> None:
    c = core()
    [dropped] = c.refuse_frame(0.0, FieldError("frame.capture_time", "must be a finite number, got nan"))
    assert dropped == Dropped(1, 0.0, DropReason.INVALID, "frame.capture_time: must be a finite number, got nan")
    [failed] = c.refuse(FieldError("audio.audio", "the audio clip is empty (0 bytes)"))
    assert failed.field == "audio.audio" and failed.sequence == 0 and not is_final_for_frame(failed)


def test_shutdown_ends_every_accepted_frame_exactly_once() -> None:
    c = core()
    events = []
    for t in range(3):
        events += c.frame(frame(float(t)), now=0.0)
    events += c.trigger(TriggerIn(0.0), now=0.0)  # job 1: running
    events += c.trigger(TriggerIn(1.0), now=0.0)  # job 2: still waiting in the queue
    c.claim(1, now=0.1)
    events += c.job_event(1, JobStarted())
    events += c.shutdown()  # frame 3, buffered, is dropped at once
    assert events[-1] == Dropped(3, 2.0, DropReason.SHUTDOWN, "the daemon is shutting down")
    events += c.frame(frame(9.0), now=0.2)  # arrives during the drain: not accepted
    assert events[-1] == Dropped(4, 9.0, DropReason.SHUTDOWN, "the session is ending; the frame was not accepted")
    events += c.job_event(2, JobSkipped(DropReason.SHUTDOWN, "the daemon is shutting down"))  # scheduler.close()
    events += c.job_event(1, JobCancelled(started=True))  # the grace period ran out
    assert events[-1] == Ended("UNAVAILABLE", events[-1].message) and c.ended
    accepted = {e.sequence for e in events if isinstance(e, Accepted)}
    finals = [e.sequence for e in events if not isinstance(e, Ended) and is_final_for_frame(e)]
    assert accepted == {1, 2, 3} and sorted(finals) == [1, 2, 3, 4]  # 4: refused, never accepted


def test_forced_shutdown_ends_jobs_the_engine_still_holds() -> None:
    c = core()
    c.frame(frame(0.0), now=0.0)
    c.trigger(TriggerIn(None), now=0.0)
    c.claim(1, now=0.0)
    assert c.shutdown() == []  # the description may still finish
    out = c.shutdown(force=True)
    assert out[:2] == [Cancel(1), Dropped(1, 0.0, DropReason.SHUTDOWN, "cancelled: the daemon stopped first")]
    assert isinstance(out[-1], Ended) and c.job_event(1, JobDone(outcome="late")) == []  # type: ignore[arg-type]


def test_a_client_that_leaves_cancels_its_jobs_and_drops_its_frames() -> None:
    c = core()
    c.frame(frame(0.0), now=0.0)
    c.frame(frame(1.0), now=0.0)
    c.trigger(TriggerIn(0.0), now=0.0)
    out = c.abandon()
    assert out == [Cancel(1), Dropped(2, 1.0, DropReason.CANCELLED, "the client left")]
    assert c.job_event(1, JobCancelled(started=False)) == [
        Dropped(1, 0.0, DropReason.CANCELLED, "the description was cancelled"),
        Ended("CANCELLED", "the client left"),
    ]


def test_audio_window_around_the_frame_goes_with_the_description() -> None:
    c = core(audio_before_seconds=0.5, audio_after_seconds=0.25)
    wave = np.arange(32_000, dtype=np.float32)  # 2 s from t = 10
    assert c.audio(AudioIn(10.0, wave), now=0.0) == [Accepted(1, 10.0, media="audio")]
    c.frame(frame(11.0), now=0.0)
    c.trigger(TriggerIn(None), now=0.0)
    [audio] = c.claim(1, now=0.1).audio
    assert audio[0] == 8_000 and len(audio) == 12_000  # 10.5 s .. 11.25 s


class Verdict:
    """A gate result as the core reads it (edge.gate.GateResult has these fields and more)."""

    def __init__(self, score: float, region: tuple[int, int, int, int] | None = None) -> None:
        self.score, self.threshold, self.gate_id, self.region = score, 0.5, "g1", region
        self.label = score > 0.5


def gated(**kw: object) -> SessionCore:
    return core(TriggerMode.GATED, image_gate=True, sound_gate=True, **kw)


def test_gated_frames_are_scored_and_only_anomalies_described() -> None:
    from edge.station.actions import Score
    from edge.station.engine import Crop
    from edge.station.events import Scored

    c = gated()
    out = c.frame(frame(1.0), now=0.0)
    assert [type(o) for o in out] == [Accepted, Score] and out[1].sequence == 1
    c.frame(frame(2.0), now=0.0)
    good = Verdict(0.2)
    assert c.scored(1, good, now=0.1) == [Scored(1, 1.0, good)]
    bad = Verdict(0.9, region=(10, 10, 20, 20))
    assert c.scored(2, bad, now=0.1) == [Submit(1)]
    request = c.claim(1, now=0.2)
    assert isinstance(request.images[1], Crop) and request.images[1].region == (10, 10, 20, 20)
    assert "score 0.90 (threshold 0.50)" in request.prompt and "x 10-20, y 10-20 of the 64x48 frame" in request.prompt
    [started] = c.job_event(1, JobStarted())
    assert started.gate is bad and started.frame_sequence == 2
    assert c.close() == []  # the description is still running
    [finished, ended] = c.job_event(1, JobDone(outcome="o"))  # type: ignore[arg-type]
    assert finished.frame_sequence == 2 and finished.gate is bad and ended == Ended("OK")


def test_the_gate_backlog_supersedes_the_oldest_waiting_frame() -> None:
    c = SessionCore(
        SessionSettings(mode=TriggerMode.GATED, prompt="p", params=None, image_gate=True),
        SessionLimits(gate_backlog=2),
        0.0,
    )
    out = [o for t in range(3) for o in c.frame(frame(float(t)), now=0.0)]
    assert Dropped(1, 0.0, DropReason.SUPERSEDED, "the gate fell behind") in out
    assert c.scored(1, Verdict(0.9), now=0.1) == []  # its verdict arrives late: nothing happens twice


def test_a_trigger_waits_for_its_frames_verdict() -> None:
    c = core(image_gate=True)
    c.frame(frame(1.0), now=0.0)
    assert c.trigger(TriggerIn(1.0), now=0.0) == []  # held until the gate has spoken
    verdict = Verdict(0.3)
    assert c.scored(1, verdict, now=0.1) == [Submit(1)]
    [started] = c.job_event(1, JobStarted())
    assert started.gate is verdict


def test_a_sound_anomaly_is_described_with_the_nearest_recent_frame() -> None:
    c = gated()
    c.frame(frame(10.0), now=0.0)
    c.frame(frame(12.0), now=0.0)
    c.scored(1, Verdict(0.1), now=0.0)
    c.scored(2, Verdict(0.1), now=0.0)
    c.audio(AudioIn(10.0, np.zeros(48_000, np.float32)), now=0.0)
    assert c.sound_scored(10.0, 11.0, Verdict(0.2), now=0.1) == []
    knock = Verdict(0.8)
    assert c.sound_scored(11.0, 12.0, knock, now=0.1) == [Submit(1)]
    req = c.claim(1, now=0.2)
    assert len(req.audio) == 1 and len(req.audio[0]) == 16_000 and len(req.images) == 1  # no region: no crop
    [started] = c.job_event(1, JobStarted())
    assert started.frame_sequence == 2 and started.window == (11.0, 12.0)  # frame 2 (t=12) is nearest 11.5
    [finished] = c.job_event(1, JobDone(outcome="o"))  # type: ignore[arg-type]
    assert finished.frame_sequence == 0 and not is_final_for_frame(finished)
