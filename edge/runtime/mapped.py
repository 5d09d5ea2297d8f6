"""Give back the resident pages of a bundle's memory-mapped weight files (Linux)."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def release_mapped_pages(folder: Path) -> int:
    """Drop this process's resident pages of the bundle's memory-mapped weight files; returns bytes advised.

    onnxruntime maps each external initializer (private, never written) and keeps some mappings after
    MatMulNBits has pre-packed them into its own buffers (the scales, for one), so every weight would
    otherwise count twice in RSS. ``MADV_DONTNEED`` gives the clean pages back; anything still read
    later (embedding rows, position tables) faults back in from the file on demand. Linux only.
    """
    if not sys.platform.startswith("linux"):
        return 0
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madv_dontneed = 4
    root = str(Path(folder).resolve())
    released = 0
    try:
        maps = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return 0
    for line in maps:
        parts = line.split(maxsplit=5)
        if len(parts) < 6 or not parts[5].startswith(root + os.sep) or not parts[5].endswith(".onnx.data"):
            continue
        start, end = (int(x, 16) for x in parts[0].split("-"))
        if libc.madvise(start, end - start, madv_dontneed) == 0:
            released += end - start
    return released
