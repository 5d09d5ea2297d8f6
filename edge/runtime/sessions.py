"""onnxruntime sessions for a verified bundle, and the decoder's KV cache between steps."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge.bundle.manifest import Manifest, load_manifest
from edge.bundle.verify import verify_bundle
from edge.errors import BundleError, EngineError
from edge.spec import ModelSpec

log = logging.getLogger(__name__)


@dataclass
class KVCache:
    """Per-layer keys and values, plus how many tokens the full-attention layers have seen."""

    keys: list[np.ndarray]
    values: list[np.ndarray]
    length: int = 0


class BundleSessions:
    """One onnxruntime session per graph, shared by every request."""

    def __init__(self, bundle: Path, manifest: Manifest, threads: int | None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.bundle = bundle
        self.manifest = manifest
        self.spec: ModelSpec = manifest.spec
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads or min(os.cpu_count() or 1, 8))
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        self.sessions: dict[str, Any] = {}
        for name, graph in manifest.graphs.items():
            path = bundle / graph["file"]
            try:
                self.sessions[name] = ort.InferenceSession(
                    str(path), sess_options=opts, providers=["CPUExecutionProvider"]
                )
            except Exception as exc:  # onnxruntime raises its own pybind exception types
                raise BundleError(f"{path}: onnxruntime cannot load this graph: {exc}") from exc
        self.output_names = {n: [o.name for o in s.get_outputs()] for n, s in self.sessions.items()}
        tok_file = bundle / manifest.tokenizer.get("file", "tokenizer.json")
        try:
            self.tokenizer = Tokenizer.from_file(str(tok_file))
        except Exception as exc:
            raise BundleError(f"{tok_file}: cannot load the tokenizer: {exc}") from exc
        self.threads = opts.intra_op_num_threads

    @classmethod
    def open(cls, bundle: Path, threads: int | None = None, verify: bool = True) -> BundleSessions:
        manifest = verify_bundle(bundle) if verify else load_manifest(bundle)
        return cls(bundle, manifest, threads)

    def run(self, name: str, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        if name not in self.sessions:
            raise EngineError(f"the bundle has no {name} graph")
        try:
            return list(self.sessions[name].run(None, feeds))
        except Exception as exc:
            raise EngineError(f"onnxruntime failed in the {name} graph: {exc}") from exc

    def empty_cache(self, batch: int = 1) -> KVCache:
        keys, values = [], []
        for layer in self.spec.text.layers:
            shape = (batch, layer.kv_heads, 0, layer.head_dim)
            keys.append(np.zeros(shape, dtype=np.float32))
            values.append(np.zeros(shape, dtype=np.float32))
        return KVCache(keys, values, 0)

    def decode_step(self, embeds: np.ndarray, cache: KVCache, token_types: np.ndarray) -> tuple[np.ndarray, KVCache]:
        """Run the decoder on ``embeds`` ``[1, S, H]`` after ``cache``; returns last-position logits."""
        seq = embeds.shape[1]
        total = cache.length + seq
        feeds: dict[str, np.ndarray] = {
            "inputs_embeds": embeds,
            "attention_mask": np.ones((embeds.shape[0], total), dtype=np.int64),
            "position_ids": np.arange(cache.length, total, dtype=np.int64)[None, :].repeat(embeds.shape[0], 0),
            "mm_token_type_ids": token_types,
        }
        for i in range(len(self.spec.text.layers)):
            feeds[f"past_key_values.{i}.key"] = cache.keys[i]
            feeds[f"past_key_values.{i}.value"] = cache.values[i]
        outs = dict(zip(self.output_names["decoder"], self.run("decoder", feeds), strict=True))
        n = len(self.spec.text.layers)
        new = KVCache(
            [outs[f"present.{i}.key"] for i in range(n)],
            [outs[f"present.{i}.value"] for i in range(n)],
            total,
        )
        return outs["logits"], new

    def detokenizer(self) -> Any:
        from tokenizers.decoders import DecodeStream

        return DecodeStream(skip_special_tokens=True)
