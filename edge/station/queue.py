"""The description queue's bookkeeping: fair admission per source, round-robin service, a global bound.

Pure data structure (no threads, no clock): the :class:`~edge.station.worker.Scheduler` holds its lock.

Admission is fair per *source* (a station's Describe calls, an Inspect session, a camera): at most
``depth`` jobs wait in all, and one source may hold at most its share, ``max(1, depth // active sources)``.
A source is active while it has jobs waiting; long-lived sources (sessions, cameras) are *registered* for
their whole life, so their share is counted even between triggers. A registered source with nothing
waiting is admitted even when the queue is full: its frame is held by its session anyway, and there are
at most ``max_streams`` of them, so at most ``depth + registered`` jobs wait. A Describe caller that
retries the moment it is refused therefore cannot take every slot: it is refused at its share, and a
session's trigger always finds room. Service is round-robin across sources with waiting jobs.

>>> q = FairQueue(depth=8)
>>> q.register("inspect:1")
>>> q.admit("station:7")            # raises OverloadedError when full or over the source's share
>>> q.push("station:7", job)
>>> q.pop()                          # the next source in turn, its oldest job
"""

from __future__ import annotations

from collections import Counter, OrderedDict, deque
from typing import Generic, TypeVar

from edge.errors import OverloadedError

T = TypeVar("T")


class FairQueue(Generic[T]):
    def __init__(self, depth: int) -> None:
        if depth < 1:
            raise ValueError(f"queue depth must be at least 1, got {depth}")
        self.depth = depth
        self._waiting: OrderedDict[str, deque[T]] = OrderedDict()  # order = round-robin order
        self._registered: Counter[str] = Counter()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def register(self, source: str) -> None:
        """A long-lived source: it keeps a share of the queue while it is open, even with nothing waiting."""
        self._registered[source] += 1

    def unregister(self, source: str) -> None:
        self._registered[source] -= 1
        if self._registered[source] <= 0:
            del self._registered[source]

    def sources(self, including: str | None = None) -> int:
        active = set(self._registered) | set(self._waiting)
        if including is not None:
            active.add(including)
        return len(active)

    def share(self, source: str) -> int:
        """How many jobs ``source`` may have waiting now."""
        return max(1, self.depth // self.sources(including=source))

    def waiting(self, source: str) -> int:
        return len(self._waiting.get(source, ()))

    def admit(self, source: str) -> None:
        """Raise OverloadedError if a job of ``source`` may not be queued now; say why and what to do."""
        if source in self._registered and not self.waiting(source):
            return  # a session's one job always gets in (see the module docstring)
        if self._count >= self.depth:
            raise OverloadedError(
                f"the description queue is full ({self.depth} waiting); retry later, send fewer triggers, "
                "or raise queue_depth"
            )
        share = self.share(source)
        if self.waiting(source) >= share:
            raise OverloadedError(
                f"this source already has {share} description(s) waiting, its fair share of queue_depth "
                f"{self.depth} among {self.sources(including=source)} sources; retry when one has finished"
            )

    def push(self, source: str, item: T) -> None:
        self.admit(source)
        self._waiting.setdefault(source, deque()).append(item)
        self._count += 1

    def pop(self) -> T | None:
        """The oldest job of the next source in turn (that source goes to the back of the line)."""
        if not self._waiting:
            return None
        source, jobs = next(iter(self._waiting.items()))
        item = jobs.popleft()
        del self._waiting[source]
        if jobs:
            self._waiting[source] = jobs
        self._count -= 1
        return item

    def clear(self) -> list[T]:
        """Remove and return every waiting job, oldest first per source."""
        out = [item for jobs in self._waiting.values() for item in jobs]
        self._waiting.clear()
        self._count = 0
        return out
