"""Progress for long build steps: a bar on a terminal, otherwise a log line every few seconds (never a silent minute).

Off a terminal (CI, pipes, the demo's captured output) a step that ends within ``quiet_s`` prints nothing;
a longer one logs ``desc: n/total unit, status, elapsed, time left`` from a timer, updates or not (every
``every_s`` seconds in its first minute, then every 15 s, and every 30 s after five minutes), and a final
``done`` line, all on the ``edge.build`` logger.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from types import TracebackType
from typing import Any

log = logging.getLogger("edge.build")


class Progress:
    """``with Progress("export decoder", total=48, unit="layer") as bar: bar.update(1)``.

    ``update(k, **status)`` also shows status values next to the count, e.g. ``bar.update(1, loss=2.31)``.
    """

    def __init__(self, desc: str, total: int, unit: str = "step", *, quiet_s: float = 2.0, every_s: float = 5.0):
        self.desc, self.total, self.unit = desc, total, unit
        self.quiet_s, self.every_s = quiet_s, every_s
        self.n = 0
        self.status: dict[str, Any] = {}
        self._bar: Any = None
        self._t0 = 0.0
        self._spoke = False
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def __enter__(self) -> Progress:
        self._t0 = time.perf_counter()
        if sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, desc=self.desc, unit=self.unit, leave=False)
        else:
            self._ticker = threading.Thread(target=self._tick, name=f"progress {self.desc}", daemon=True)
            self._ticker.start()
        return self

    def update(self, k: int = 1, **status: Any) -> None:
        self.n += k
        self.status.update(status)
        if self._bar is not None:
            if status:
                self._bar.set_postfix({key: _fmt(v) for key, v in self.status.items()}, refresh=False)
            self._bar.update(k)

    def line(self) -> str:
        """``desc: 300/1200 steps, loss 2.31, 45 s, about 2 min left``."""
        elapsed = time.perf_counter() - self._t0
        parts = [f"{self.n}/{self.total} {self.unit}{'s' if self.total != 1 else ''}"]
        parts += [f"{key} {_fmt(v)}" for key, v in self.status.items()]
        parts.append(_duration(elapsed))
        if 0 < self.n < self.total:
            parts.append(f"about {_duration(elapsed / self.n * (self.total - self.n))} left")
        return f"{self.desc}: " + ", ".join(parts)

    def _tick(self) -> None:
        wait = self.quiet_s
        while not self._stop.wait(wait):
            self._spoke = True
            log.info("%s", self.line())
            # a line every every_s seconds for the first minute, then fewer: at most 30 s apart
            elapsed = time.perf_counter() - self._t0
            wait = self.every_s if elapsed < 60 else max(self.every_s, 15.0 if elapsed < 300 else 30.0)

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        if self._bar is not None:
            self._bar.close()
        if et is None and (self._spoke or self._bar is not None):
            status = "".join(f", {key} {_fmt(v)}" for key, v in self.status.items())
            log.info("%s: done in %s%s", self.desc, _duration(time.perf_counter() - self._t0), status)


def _fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def library_bars_to_terminals() -> None:
    """transformers' own bars (loading, writing weights) redraw with carriage returns: off a terminal they are
    control bytes in a log, so they are switched off there; ``Progress`` reports the long steps instead."""
    if not sys.stderr.isatty():
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
