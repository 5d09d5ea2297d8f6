"""Progress for long build steps: a bar on a terminal, plain log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time
from types import TracebackType
from typing import Any

log = logging.getLogger("edge.build")


class Progress:
    """``with Progress("export decoder", total=48, unit="layer") as bar: bar.update(1)``."""

    def __init__(self, desc: str, total: int, unit: str = "step") -> None:
        self.desc, self.total, self.unit = desc, total, unit
        self.n = 0
        self._bar: Any = None
        self._t0 = 0.0
        self._last_log = 0.0

    def __enter__(self) -> Progress:
        self._t0 = time.perf_counter()
        if sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, desc=self.desc, unit=self.unit, leave=False)
        else:
            log.info("%s ...", self.desc)
        return self

    def update(self, k: int = 1) -> None:
        self.n += k
        if self._bar is not None:
            self._bar.update(k)
        elif self.total > 1 and time.perf_counter() - self._last_log > 5.0:
            self._last_log = time.perf_counter()
            log.info("%s: %d/%d %s", self.desc, self.n, self.total, self.unit)

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.close()
        if et is None:
            log.info("%s: done in %.1f s", self.desc, time.perf_counter() - self._t0)
