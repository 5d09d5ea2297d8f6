"""``ListEvents``, ``WatchEvents`` and ``GetEvidence``: the station's journal for integrators, over gRPC.

Events are returned as the journal holds them: sequence, time, kind, source and the JSON document that
MQTT publishes, byte for byte. ``WatchEvents`` replays from ``since_sequence`` and then follows the
journal; it is woken by the journal's writer after each commit, and ends with UNAVAILABLE when the
daemon drains (the client reconnects with the last sequence it saw). Without ``state_dir`` the daemon
keeps no journal and these RPCs answer FAILED_PRECONDITION.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable

from edge.errors import FieldError, JournalError, ShuttingDownError
from edge.journal.store import StoredEvent
from edge.serve.config import ServeConfig
from edge.serve.convert import parse
from edge.v1 import inspector_pb2 as pb

KINDS = {
    pb.EVENT_KIND_SCORED: "scored",
    pb.EVENT_KIND_FINISHED: "finished",
    pb.EVENT_KIND_DROPPED: "dropped",
    pb.EVENT_KIND_ERROR: "error",
}
KIND_VALUES = {v: k for k, v in KINDS.items()}
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
REPLAY_BATCH = 500


def event_message(e: StoredEvent) -> pb.Event:
    return pb.Event(
        sequence=e.sequence,
        time=e.time,
        kind=KIND_VALUES.get(e.kind, pb.EVENT_KIND_UNSPECIFIED),
        source=e.source,
        json=e.payload,
    )


def event_filter(f: pb.EventFilter) -> tuple[tuple[str, ...], str]:
    kinds = []
    for i, k in enumerate(f.kinds):
        if k not in KINDS:
            raise FieldError(f"filter.kinds[{i}]", f"unknown event kind {k}; use SCORED, FINISHED, DROPPED or ERROR")
        kinds.append(KINDS[k])
    return tuple(kinds), f.source


class EventsRpc:
    """The three RPCs over the daemon's journal (``edge.serve.journaling.Journaling`` or None)."""

    def __init__(self, journaling: object, cfg: ServeConfig) -> None:
        self.journaling, self.cfg = journaling, cfg
        self._draining = False
        self._wakers: set[Callable[[], None]] = set()

    def _journal(self):
        if self.journaling is None:
            raise JournalError(
                "this daemon keeps no event journal: set state_dir in its config (and mqtt_host to publish)"
            )
        return self.journaling.journal  # type: ignore[attr-defined]

    def shutdown(self) -> None:
        """The daemon drains: every WatchEvents stream ends now."""
        self._draining = True
        for wake in list(self._wakers):
            wake()

    async def list(self, raw: bytes) -> pb.ListEventsResponse:
        req = parse(pb.ListEventsRequest, raw)
        journal = self._journal()
        kinds, source = event_filter(req.filter)
        if req.limit > MAX_LIMIT:
            raise FieldError("limit", f"{req.limit} is over the maximum of {MAX_LIMIT} events per page")
        limit = req.limit or DEFAULT_LIMIT
        head = journal.head
        events = await asyncio.to_thread(journal.read, req.since_sequence, limit, kinds, source)
        oldest, _ = await asyncio.to_thread(journal.store.bounds)
        nxt = events[-1].sequence if len(events) == limit else max(head, req.since_sequence)
        return pb.ListEventsResponse(
            events=[event_message(e) for e in events],
            head_sequence=head,
            oldest_sequence=oldest,
            next_sequence=nxt,
        )

    async def watch(self, raw: bytes) -> AsyncGenerator[pb.WatchEventsResponse, None]:
        req = parse(pb.WatchEventsRequest, raw)
        journal = self._journal()
        kinds, source = event_filter(req.filter)
        loop = asyncio.get_running_loop()
        woken = asyncio.Event()

        def wake() -> None:  # any thread
            loop.call_soon_threadsafe(woken.set)

        remove = journal.add_listener(lambda head: wake())  # before the replay: no commit is missed
        self._wakers.add(wake)
        after = req.since_sequence
        try:
            while not self._draining:
                woken.clear()
                head = journal.head
                events = await asyncio.to_thread(journal.read, after, REPLAY_BATCH, kinds, source)
                for e in events:
                    yield pb.WatchEventsResponse(event=event_message(e))
                after = events[-1].sequence if len(events) == REPLAY_BATCH else max(after, head)
                if len(events) < REPLAY_BATCH and not self._draining:
                    await woken.wait()
            raise ShuttingDownError(
                f"the daemon is shutting down; watch again with since_sequence={after} to resume without a gap"
            )
        finally:
            remove()
            self._wakers.discard(wake)

    async def evidence(self, raw: bytes) -> pb.GetEvidenceResponse:
        req = parse(pb.GetEvidenceRequest, raw)
        journal = self._journal()
        media, data = await asyncio.to_thread(journal.evidence_file, req.id)
        return pb.GetEvidenceResponse(id=req.id.strip().lower(), media_type=media, data=data)
