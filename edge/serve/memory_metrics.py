"""Resident memory and the cgroup's memory limits as Prometheus gauges, read from /proc and /sys at every scrape."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily

# cgroup v1 writes "no limit" as PAGE_COUNTER_MAX * page size (9223372036854771712 with 4 KiB pages); no
# station has an exbibyte of memory, so anything above this is no limit whatever the page size.
_UNLIMITED = 1 << 60


class MemoryCollector:
    """Resident memory and the cgroup's memory limits, read from /proc and /sys at every scrape.

    "No limit" (cgroup v2 ``max``, v1's huge sentinel, no cgroup at all) leaves the series out rather than
    exposing +Inf: ``resident / limit`` alerts then simply do not match, and fleet-wide min/avg panels are not
    turned into +Inf by one unlimited station.
    """

    def __init__(self, namespace: str, proc_self: Path, cgroup_root: Path) -> None:
        self.prefix, self.proc_self, self.cgroup_root = namespace, proc_self, cgroup_root
        self.docs = {
            "resident_memory_bytes": "Resident set size of the daemon (VmRSS).",
            "memory_limit_bytes": "Memory limit of the daemon's cgroup (memory.max, v1 memory.limit_in_bytes).",
            "memory_high_bytes": "Throttling threshold of the daemon's cgroup (cgroup v2 memory.high).",
        }

    def describe(self) -> Iterator[GaugeMetricFamily]:
        for name, doc in self.docs.items():
            yield GaugeMetricFamily(f"{self.prefix}_{name}", doc)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        limit, high = self._cgroup_limits()
        values = {"resident_memory_bytes": self._rss(), "memory_limit_bytes": limit, "memory_high_bytes": high}
        for name, value in values.items():
            if value is not None:
                yield GaugeMetricFamily(f"{self.prefix}_{name}", self.docs[name], value=value)

    def _rss(self) -> float | None:
        try:
            for line in (self.proc_self / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return float(line.split()[1]) * 1024  # the kernel writes kB (KiB)
        except (OSError, ValueError, IndexError):
            pass
        return None

    def _cgroup_limits(self) -> tuple[float | None, float | None]:
        """(limit, high) of this process's memory cgroup; None where there is no limit."""
        try:
            lines = (self.proc_self / "cgroup").read_text().splitlines()
        except OSError:
            return None, None
        unified = (self.cgroup_root / "cgroup.controllers").exists()  # v2 mounted at the root, not hybrid
        for line in lines:
            hierarchy, _, rest = line.partition(":")
            controllers, _, path = rest.partition(":")
            if unified and hierarchy == "0":
                return _tightest(self.cgroup_root, path, "memory.max"), _tightest(self.cgroup_root, path, "memory.high")
            if not unified and "memory" in controllers.split(","):
                return _tightest(self.cgroup_root / "memory", path, "memory.limit_in_bytes"), None
        return None, None


def _tightest(mount: Path, path: str, name: str) -> float | None:
    """The smallest limit on the cgroup at ``path`` and its ancestors: a parent's limit binds its children.

    Walking up also covers a container without its own cgroup namespace, where /proc/self/cgroup names the host's
    path but the container's cgroup is mounted at the root: the walk ends at the mount root, which is that cgroup.
    """
    parts = [p for p in path.split("/") if p not in ("", ".", "..")]  # ".." appears outside a cgroup namespace
    limits = [v for i in range(len(parts), -1, -1) if (v := _read_limit(mount.joinpath(*parts[:i], name))) is not None]
    return min(limits, default=None)


def _read_limit(file: Path) -> float | None:
    try:
        value = int(file.read_text().strip())  # "max" raises ValueError: no limit
    except (OSError, ValueError):
        return None
    return float(value) if 0 <= value < _UNLIMITED else None
