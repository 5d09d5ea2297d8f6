"""What a session core asks its driver to do, besides reporting events to the client.

>>> for out in core.frame(frame, now):
...     if isinstance(out, Score): gate_pool.submit(score, out.sequence)     # the gate's worker
...     elif isinstance(out, Submit): scheduler.submit(job_for(out.job_id))  # the engine's queue
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Score:
    """Score frame ``sequence`` (its ``image``, still encoded) with the image gate, then call ``scored`` (or
    ``score_failed``)."""

    sequence: int
    image: Any


@dataclass(frozen=True)
class Submit:
    """Queue description job ``job_id``; its turn calls ``claim``, its events go to ``job_event``."""

    job_id: int


@dataclass(frozen=True)
class Cancel:
    """Stop description job ``job_id`` between tokens."""

    job_id: int


@dataclass(frozen=True)
class Ended:
    """The session is over: end the stream with this status."""

    status: str  # a grpc.StatusCode name: "OK" (the client closed), "UNAVAILABLE" (shutdown), "CANCELLED"
    message: str = ""
