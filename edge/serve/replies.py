"""Domain results out as protobuf: description responses, Inspect session events and camera states."""

from __future__ import annotations

from typing import Any

from edge.serve.status import status_for
from edge.station.events import Accepted, Dropped, DropReason, Event, Failed, Finished, Scored, Started, Token
from edge.station.inputs import PartContext
from edge.station.worker import Outcome
from edge.v1 import inspector_pb2 as pb

DROP_REASONS = {
    DropReason.SUPERSEDED: pb.DROP_REASON_SUPERSEDED,
    DropReason.STALE: pb.DROP_REASON_STALE,
    DropReason.QUEUE_FULL: pb.DROP_REASON_QUEUE_FULL,
    DropReason.INVALID: pb.DROP_REASON_INVALID,
    DropReason.NO_FRAME: pb.DROP_REASON_NO_FRAME,
    DropReason.SHUTDOWN: pb.DROP_REASON_SHUTDOWN,
    DropReason.CANCELLED: pb.DROP_REASON_CANCELLED,
}


def context_message(ctx: PartContext) -> pb.PartContext:
    return pb.PartContext(station_id=ctx.station_id, camera_id=ctx.camera_id, part_id=ctx.part_id, line_id=ctx.line_id)


def gate_message(result: Any, window: tuple[float, float] | None = None) -> pb.GateResult | None:
    """An edge.gate.GateResult as protobuf; a sound result carries its window's capture times."""
    if result is None:
        return None
    msg = pb.GateResult(
        kind=pb.GATE_KIND_SOUND if result.anomaly_map is None and result.region is None else pb.GATE_KIND_IMAGE,
        score=result.score,
        anomalous=bool(result.label),
        threshold=result.threshold,
        gate_id=result.gate_id,
        latency_seconds=result.latency_s,
    )
    if result.region is not None:
        x0, y0, x1, y1 = result.region
        msg.region.CopyFrom(pb.Region(x0=x0, y0=y0, x1=x1, y1=y1))
    if window is not None:
        msg.kind = pb.GATE_KIND_SOUND
        msg.window_start_time, msg.window_end_time = window
    return msg


def describe_response(
    o: Outcome, model: pb.ModelIdentity, context: pb.PartContext, gate: pb.GateResult | None = None
) -> pb.DescribeResponse:
    result, t = o.result, o.result.timings
    report = result.text if result.report is not None else ""  # the validated text, byte for byte
    return pb.DescribeResponse(
        text=result.text,
        token_ids=[int(x) for x in result.token_ids],
        stop_reason=pb.STOP_REASON_END_OF_TURN if result.stop_reason == "eos" else pb.STOP_REASON_MAX_TOKENS,
        timings=pb.Timings(
            preprocess_seconds=o.preprocess_s,
            queue_seconds=o.queue_s,
            embed_seconds=t.embed_s,
            prefill_seconds=t.prefill_s,
            time_to_first_token_seconds=o.preprocess_s + t.ttft_s,
            decode_seconds=t.decode_s,
            total_seconds=o.total_s,
            prompt_tokens=t.prompt_tokens,
            generated_tokens=t.new_tokens,
        ),
        model=model,
        context=context,
        report_json=report,
        report_error=result.report_error,
        inputs_sha256=o.inputs_sha256,
        schema_sha256=o.schema_sha256,
        gate=gate,
    )


def error_message(exc: BaseException, sequence: int = 0) -> pb.Error:
    return pb.Error(code=status_for(exc).value[0], message=str(exc), field=getattr(exc, "field", ""), sequence=sequence)


def inspect_event(ev: Event, model: pb.ModelIdentity) -> pb.InspectResponse:
    if isinstance(ev, Accepted):
        return pb.InspectResponse(accepted=pb.Accepted(sequence=ev.sequence, capture_time=ev.capture_time))
    if isinstance(ev, Dropped):
        return pb.InspectResponse(
            dropped=pb.Dropped(
                sequence=ev.sequence, capture_time=ev.capture_time, reason=DROP_REASONS[ev.reason], detail=ev.detail
            )
        )
    if isinstance(ev, Started):
        return pb.InspectResponse(
            started=pb.DescriptionStarted(
                description_id=ev.description_id,
                frame_sequence=ev.frame_sequence,
                frame_capture_time=ev.frame_capture_time,
                trigger_time=ev.trigger_time,
                gate=gate_message(ev.gate, ev.window),
            )
        )
    if isinstance(ev, Token):
        chunk = pb.TokenChunk(token_id=ev.token_id, text=ev.text)
        return pb.InspectResponse(token=pb.DescriptionToken(description_id=ev.description_id, token=chunk))
    if isinstance(ev, Finished):
        result = describe_response(ev.outcome, model, context_message(ev.context), gate_message(ev.gate, ev.window))
        return pb.InspectResponse(
            finished=pb.DescriptionFinished(
                description_id=ev.description_id, result=result, frame_sequence=ev.frame_sequence
            )
        )
    if isinstance(ev, Scored):
        msg = pb.Scored(sequence=ev.sequence, capture_time=ev.capture_time, gate=gate_message(ev.gate))
        return pb.InspectResponse(scored=msg)
    if isinstance(ev, Failed):
        return pb.InspectResponse(error=error_message(ev.error, ev.sequence))
    raise TypeError(f"not a session event: {ev!r}")


_STATES = {
    "connecting": pb.SOURCE_STATE_CONNECTING,
    "streaming": pb.SOURCE_STATE_STREAMING,
    "backoff": pb.SOURCE_STATE_BACKOFF,
    "failed": pb.SOURCE_STATE_FAILED,
}


def source_message(s: Any) -> pb.SourceStatus:
    """A camera's ``edge.serve.cameras.SourceSnapshot`` for GetInfo."""
    st = s.status
    msg = pb.SourceStatus(
        id=st.id,
        url=st.url,
        state=_STATES.get(st.state, pb.SOURCE_STATE_UNSPECIFIED),
        fps=st.fps,
        reconnects=st.reconnects,
        frames_received=st.frames,
        decode_errors=st.decode_errors,
        last_error=st.error,
        trigger=s.trigger,
        width=st.info.width if st.info else 0,
        height=st.info.height if st.info else 0,
        codec=st.info.codec if st.info else "",
        audio_state=_STATES.get(s.audio_state, pb.SOURCE_STATE_UNSPECIFIED),
        audio_error=s.audio_error,
        audio_seconds=s.audio_seconds,
    )
    if st.frame_age is not None:
        msg.last_frame_age_seconds = st.frame_age
    return msg
