"""A camera connection as a sans-I/O state machine: connect, stream, stall, back off with jitter, reconnect.

:class:`CameraLink` holds no sockets, threads or clock: the capture loop reports what happened (``opened``,
``frame``, ``failed``) with the time, and asks ``tick(now)`` what to do next. It answers with actions:
:class:`Open` (start a reader for a new connection) or :class:`Abandon` (the current reader stalled: stop
waiting for it and count it as failed). The states are those GetInfo shows::

    connecting ──first frame──▶ streaming
        ▲  │                       │ read failed, stream ended, or no frame for stall_seconds
        │  └──open failed──┐       ▼
        └──backoff over─── backoff / failed (the same waits; "failed" when retrying is unlikely to help)

Waits grow exponentially from ``initial`` to ``maximum`` with ±``jitter`` so cameras that fell together do
not reconnect in lock step (the "full jitter" family; here proportional, so the wait never drops to 0).
A frame resets the growth. ``frame`` also applies the fps cap: it says whether this frame goes on.

>>> link = CameraLink(LinkPolicy(stall_seconds=10, fps=5), random.Random(0))
>>> link.tick(0.0)                       # [Open(attempt=1)]
>>> link.opened(0.4); link.frame(0.5)    # True: deliver it; state streaming
>>> link.tick(11.0)                      # [Abandon(...)]: stalled; later ticks Open again after the wait
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass


class LinkState(enum.StrEnum):
    CONNECTING = "connecting"
    STREAMING = "streaming"
    BACKOFF = "backoff"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass(frozen=True)
class LinkPolicy:
    stall_seconds: float = 10.0
    fps: float = 5.0
    open_timeout_seconds: float = 15.0
    initial: float = 1.0
    maximum: float = 60.0
    jitter: float = 0.2  # each wait is drawn from [1 - jitter, 1 + jitter] × the nominal wait

    def wait(self, failures: int, rng: random.Random) -> float:
        """The wait after ``failures`` consecutive failures (1 = the first)."""
        nominal = min(self.initial * 2.0 ** (failures - 1), self.maximum)
        return nominal * rng.uniform(1.0 - self.jitter, 1.0 + self.jitter)


@dataclass(frozen=True)
class Problem:
    """Why a connection ended; ``permanent`` when retrying is unlikely to help (wrong password, no such file)."""

    message: str
    permanent: bool = False


@dataclass(frozen=True)
class Open:
    """Start a reader for connection ``attempt`` (its number since start, from 1)."""

    attempt: int


@dataclass(frozen=True)
class Abandon:
    """The reader of ``attempt`` stopped delivering: drop it (it ends when its read returns) and count it failed."""

    attempt: int
    problem: Problem


Action = Open | Abandon


class CameraLink:
    def __init__(self, policy: LinkPolicy, rng: random.Random) -> None:
        self.policy, self.rng = policy, rng
        self.state = LinkState.CONNECTING
        self.attempt = 0  # the current (or last) connection's number
        self.reconnects = 0  # connections made after the first
        self.failures = 0  # consecutive failures since the last frame
        self.problem: Problem | None = None  # why the last connection ended
        self.last_frame: float | None = None
        self._since = 0.0  # when the current connection started, or its last frame came
        self._opened = False
        self._retry_at: float | None = 0.0  # when to open the next connection (None: one is open)
        self._due = 0.0  # the fps cap: the next frame to pass may come at this time

    # -- what the reader reports ---------------------------------------------------------------------
    def opened(self, now: float, attempt: int) -> None:
        if attempt == self.attempt and self._retry_at is None:
            self._opened, self._since = True, now

    def frame(self, now: float, attempt: int) -> bool:
        """A frame arrived on connection ``attempt``; True if it should go on (the fps cap)."""
        if attempt != self.attempt or self._retry_at is not None or self.state is LinkState.STOPPED:
            return False  # a superseded reader's late frame
        self.state, self.failures, self.problem = LinkState.STREAMING, 0, None
        self.last_frame = self._since = now
        if now < self._due:
            return False
        period = 1.0 / self.policy.fps
        # at most one frame per period on average, and no burst to catch up after a gap
        self._due = max(self._due + period, now + period / 2)
        return True

    def failed(self, now: float, attempt: int, problem: Problem) -> None:
        """Connection ``attempt`` could not be opened, or its stream ended or broke."""
        if attempt == self.attempt and self._retry_at is None and self.state is not LinkState.STOPPED:
            self._back_off(now, problem)

    def stop(self) -> None:
        self.state, self._retry_at = LinkState.STOPPED, None

    # -- the supervisor's clock ----------------------------------------------------------------------
    def tick(self, now: float) -> list[Action]:
        if self.state is LinkState.STOPPED:
            return []
        if self._retry_at is not None:
            if now < self._retry_at:
                return []
            if self.attempt:
                self.reconnects += 1
            self.attempt += 1
            self._retry_at, self._opened, self._since = None, False, now
            if self.state is LinkState.BACKOFF:  # "failed" stays until a frame shows the fix worked
                self.state = LinkState.CONNECTING
            return [Open(self.attempt)]
        limit = self.policy.stall_seconds + (0.0 if self._opened else self.policy.open_timeout_seconds)
        if now - self._since > limit:
            what = "no frame" if self._opened else "the stream did not open"
            problem = Problem(
                f"stalled: {what} for {now - self._since:.1f} s (stall_seconds {self.policy.stall_seconds:g})"
            )
            self._back_off(now, problem)
            return [Abandon(self.attempt, problem)]
        return []

    def next_check(self, now: float) -> float:
        """Seconds until ``tick`` may have something to do (a bound for the supervisor's sleep)."""
        if self._retry_at is not None:
            return max(self._retry_at - now, 0.0)
        return min(self.policy.stall_seconds / 4, 0.5)

    def frame_age(self, now: float) -> float | None:
        return None if self.last_frame is None else now - self.last_frame

    # -- internals -------------------------------------------------------------------------------------
    def _back_off(self, now: float, problem: Problem) -> None:
        self.failures += 1
        self.problem = problem
        self.state = LinkState.FAILED if problem.permanent else LinkState.BACKOFF
        wait = self.policy.wait(self.failures, self.rng)
        if problem.permanent:  # a fix needs a person (a password, a cable): try at the slowest pace
            wait = max(wait, self.policy.maximum * (1.0 - self.policy.jitter))
        self._retry_at = now + wait
