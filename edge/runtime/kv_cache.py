"""The decoder's KV cache between steps, and how a prompt is cut into prefill calls that fill it.

The reference graph takes and returns per-layer arrays (:class:`KVCache`); the fused graph appends in place
to buffers allocated once per :class:`~edge.runtime.sessions.BundleSessions` (:class:`KVBuffers`), which a
generation holds through a :class:`BoundCache`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge.bundle.memory import SLIDING_SLACK
from edge.runtime.prompt import IMAGE, VIDEO
from edge.spec import SLIDING, ModelSpec


@dataclass
class KVCache:
    """Reference graph: per-layer keys and values as arrays, plus how many tokens have been seen."""

    keys: list[np.ndarray]
    values: list[np.ndarray]
    length: int = 0


class KVBuffers:
    """Fused graph: one preallocated buffer per layer and kind, bound as both past and present.

    The decoder appends to the buffers in place, so a step copies nothing. Full-attention
    layers hold ``capacity`` rows; sliding layers hold ``window + SLIDING_SLACK − 1`` rows and
    are compacted by the operator. There is one set per BundleSessions, allocated at load, in float16 when the
    decoder runs GroupAttentionF16 (``edge/kernels/half_kv.py``), else float32.
    """

    def __init__(self, spec: ModelSpec, capacity: int, dtype: type = np.float32) -> None:
        import onnxruntime as ort

        window = spec.text.sliding_window or capacity
        self.capacity = capacity
        self.window_capacity = window + SLIDING_SLACK - 1
        self.buffers: list[tuple[np.ndarray, np.ndarray]] = []
        for layer in spec.text.layers:
            rows = self.window_capacity if layer.kind == SLIDING else capacity
            shape = (1, layer.kv_heads, rows, layer.head_dim)
            self.buffers.append((np.zeros(shape, dtype), np.zeros(shape, dtype)))
        self.values = [
            (ort.OrtValue.ortvalue_from_numpy(k), ort.OrtValue.ortvalue_from_numpy(v)) for k, v in self.buffers
        ]
        self.nbytes = sum(k.nbytes + v.nbytes for k, v in self.buffers)
        self.epoch = 0  # bumped by every new generation; older BoundCache handles become invalid


@dataclass
class BoundCache:
    """One generation's handle on the KV buffers: how many tokens it has cached."""

    buffers: KVBuffers
    epoch: int
    length: int = 0

    @property
    def capacity(self) -> int:
        return self.buffers.capacity


def prefill_chunks(token_types: np.ndarray, chunk: int) -> list[tuple[int, int]]:
    """Split a prompt into ``[start, end)`` spans of at most ``chunk`` tokens, never inside an image block.

    An image block longer than ``chunk`` gets a span of its own.
    """
    types = np.asarray(token_types).reshape(-1)
    n = len(types)
    image = np.isin(types, (IMAGE, VIDEO))
    spans: list[tuple[int, int]] = []
    start = 0
    while start < n:
        end = min(start + chunk, n)
        if end < n and image[end - 1] and image[end]:  # would cut a block: end before it, or take it whole
            block_start = end - 1
            while block_start > start and image[block_start - 1]:
                block_start -= 1
            if block_start > start:
                end = block_start
            else:
                while end < n and image[end]:
                    end += 1
        spans.append((start, end))
        start = end
    return spans
