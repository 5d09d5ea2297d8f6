"""This machine's memory read bandwidth, measured with as many threads as the engine uses.

Decode is bound by reading every weight once per token, so the figure that matters is how
fast this process can stream a buffer much larger than the caches. Each thread reduces its
own slice of a 1 GiB buffer (numpy releases the GIL inside reductions); several kernels are
tried and the fastest wins, so the bound is never understated. ``edge bench`` measures it
before and after the engine figures and keeps the higher: these machines are shared, and a
busy neighbour lowers a single measurement.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

BUFFER_BYTES = 1 << 30

KERNELS: dict[str, Callable[[np.ndarray], object]] = {
    "sum_f32": lambda a: np.add.reduce(a),
    "max_f32": lambda a: np.maximum.reduce(a),
    "or_u64": lambda a: np.bitwise_or.reduce(a.view(np.uint64)),
}


def read_bandwidth(threads: int, buffer_bytes: int = BUFFER_BYTES, repeats: int = 10) -> dict[str, float | str]:
    """Best bytes/s over kernels and repeats, with the kernel that reached it."""
    buf = np.ones(buffer_bytes // 4, dtype=np.float32)  # written once, so every page is resident
    parts = np.array_split(buf, threads)
    best, best_kernel = 0.0, ""
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for name, kernel in KERNELS.items():
            list(pool.map(kernel, parts))  # warm-up
            for _ in range(repeats):
                t0 = time.perf_counter()
                list(pool.map(kernel, parts))
                rate = buf.nbytes / (time.perf_counter() - t0)
                if rate > best:
                    best, best_kernel = rate, name
    return {"bytes_per_s": best, "kernel": best_kernel, "threads": threads, "buffer_bytes": buf.nbytes}


def read_bandwidth_isolated(threads: int, buffer_bytes: int = BUFFER_BYTES, repeats: int = 10) -> dict[str, Any]:
    """``read_bandwidth`` in a child process, so its buffer never counts in the caller's peak RSS."""
    cmd = [sys.executable, "-m", "edge.bench.bandwidth", str(threads), str(buffer_bytes), str(repeats)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=600)
    return dict(json.loads(proc.stdout))


def best_read_bandwidth(threads: int, runs: int = 3) -> float:
    """The highest of ``runs`` isolated readings, in bytes/s: a busy neighbour lowers a single one."""
    return max(float(read_bandwidth_isolated(threads)["bytes_per_s"]) for _ in range(runs))


if __name__ == "__main__":
    print(json.dumps(read_bandwidth(*(int(a) for a in sys.argv[1:4]))))
