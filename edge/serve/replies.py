"""Domain results out as protobuf: description responses and Inspect session events."""

from __future__ import annotations

from edge.serve.status import status_for
from edge.station.events import Accepted, Dropped, DropReason, Event, Failed, Finished, Started, Token
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


def describe_response(o: Outcome, model: pb.ModelIdentity, context: pb.PartContext) -> pb.DescribeResponse:
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
            )
        )
    if isinstance(ev, Token):
        chunk = pb.TokenChunk(token_id=ev.token_id, text=ev.text)
        return pb.InspectResponse(token=pb.DescriptionToken(description_id=ev.description_id, token=chunk))
    if isinstance(ev, Finished):
        result = describe_response(ev.outcome, model, context_message(ev.context))
        return pb.InspectResponse(finished=pb.DescriptionFinished(description_id=ev.description_id, result=result))
    if isinstance(ev, Failed):
        return pb.InspectResponse(error=error_message(ev.error, ev.sequence))
    raise TypeError(f"not a session event: {ev!r}")
