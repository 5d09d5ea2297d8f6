"""Who is told the journal's new head: the listeners of a journal (after each commit) or of its follower."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("edge.journal")


class Listeners:
    """Thread-safe: ``add`` from any thread, ``notify`` from the one that saw the new head."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fns: list[Callable[[int], None]] = []

    def add(self, fn: Callable[[int], None]) -> Callable[[], None]:
        """Call ``fn(head)`` at every notify; returns the function that removes it."""
        with self._lock:
            self._fns.append(fn)

        def remove() -> None:
            with self._lock:
                if fn in self._fns:
                    self._fns.remove(fn)

        return remove

    def notify(self, head: int) -> None:
        with self._lock:
            fns = list(self._fns)
        for fn in fns:
            try:
                fn(head)
            except Exception:
                log.exception("a journal listener failed")
