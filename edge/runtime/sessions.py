"""onnxruntime sessions for a verified bundle: one per graph, our kernels swapped in, the decoder's steps."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from edge.bundle.manifest import Manifest, load_manifest
from edge.bundle.verify import verify_bundle
from edge.errors import BundleError, EngineError
from edge.kernels.library import (
    ATTENTION_ENV,
    ENV,
    INT8_GEMM_PATHS,
    INT8_GRAPHS,
    KV_ENV,
    KernelChoice,
    choose_kernels,
    half_kv_cache,
    our_attention,
)
from edge.kernels.swap import swap
from edge.runtime.kv_cache import BoundCache, KVBuffers, KVCache
from edge.runtime.mapped import release_mapped_pages
from edge.spec import IMAGE_MASKS, ModelSpec

log = logging.getLogger(__name__)
_CPU = ["CPUExecutionProvider"]
SPINNING = "session.intra_op.allow_spinning"  # onnxruntime session config key


class BundleSessions:
    """One onnxruntime session per graph, shared by every request."""

    def __init__(
        self,
        bundle: Path,
        manifest: Manifest,
        threads: int | None,
        tuning: dict[str, str] | None = None,
        kernels: str | None = None,
        kv_cache: str | None = None,
    ) -> None:
        from tokenizers import Tokenizer

        self.bundle = bundle
        self.manifest = manifest
        self.spec: ModelSpec = manifest.spec
        self.threads = int(threads or min(os.cpu_count() or 1, 8))
        # onnxruntime session config entries, for `edge bench --sweep`. Left at onnxruntime's defaults on purpose:
        # "session.prepack.enable_parallel" loads the bench bundle in 0.47 s instead of 0.60 s, but holds every
        # mapped original and packed copy at once and took the 12B's load peak from 11.4 to 16.5 GiB (measured)
        self.tuning = dict(tuning or {})
        # which weight-matmul kernels run: ours (edge/kernels) where they load, else onnxruntime's MatMulNBits
        setting = (kernels if kernels is not None else os.environ.get(ENV, "")).strip().lower() or "auto"
        self.kernels: KernelChoice = choose_kernels(setting)
        self._forced = setting not in ("auto", "off")
        self.kernel_nodes = 0
        self.attention = our_attention(os.environ.get(ATTENTION_ENV))  # our GroupAttention where our kernels run
        self.attention_nodes = 0
        # asked for: a float16 cache where our attention runs (kv_cache, else EDGE_KV_CACHE)
        quantized = manifest.quantization.get("decoder", {}).get("scheme", "fp32") != "fp32"
        self.half_kv = half_kv_cache(kv_cache if kv_cache is not None else os.environ.get(KV_ENV), quantized)
        self.half_kv_nodes = 0  # attention layers on GroupAttentionF16 (the decoder's cache is float16)
        self.image_block_nodes = 0  # of those, layers that also compute the image-block mask (no If branches)
        # the bundle's image-block mask, which our attention computes (a bundle without one keeps its If branches)
        mask = manifest.processor.get("image_mask")
        self.image_mask: str | None = mask if mask in IMAGE_MASKS else None
        self.int8_nodes = 0  # int8 MatMulNBits nodes (the LM head) on our MatMulInt8
        self.gated_nodes = 0  # GeGLU activations (Split, Gelu, Mul) on our GatedGelu
        if self.kernels.isa is None and setting != "off":
            log.warning("int4 kernels: using onnxruntime's MatMulNBits: %s", self.kernels.reason)
        self.sessions: dict[str, Any] = {}
        for name, graph in manifest.graphs.items():
            int8 = name in INT8_GRAPHS or self.kernels.isa in INT8_GEMM_PATHS
            decoder = name == "decoder"
            self.sessions[name] = self._load(bundle / graph["file"], int8=int8, spin=decoder, half_kv=decoder)
        if self.kernels.isa and not self.kernel_nodes:
            self.kernels = KernelChoice(None, None, "no int4 MatMulNBits node in the bundle that our kernels take")
        elif self.kernels.isa:
            log.info(
                "int4 kernels: %s on %d weight matmuls (+ %d int8), %d GeGLU activations",
                self.kernels.label,
                self.kernel_nodes,
                self.int8_nodes,
                self.gated_nodes,
            )
        if self.attention_nodes:
            log.info(
                "attention: edge.kernels GroupAttention on %d attention layers (%d with image blocks), KV cache %s",
                self.attention_nodes,
                self.image_block_nodes,
                self.kv_type,
            )
        self.output_names = {n: [o.name for o in s.get_outputs()] for n, s in self.sessions.items()}
        log.debug("released %d bytes of mapped weight pages", release_mapped_pages(bundle))
        tok_file = bundle / manifest.tokenizer.get("file", "tokenizer.json")
        try:
            self.tokenizer = Tokenizer.from_file(str(tok_file))
        except Exception as exc:
            raise BundleError(f"{tok_file}: cannot load the tokenizer: {exc}") from exc
        decoder_inputs = (
            {i.name for i in self.sessions["decoder"].get_inputs()} if "decoder" in self.sessions else set()
        )
        self.fused = bool(decoder_inputs) and "attention_mask" not in decoder_inputs
        self.kv: KVBuffers | None = None
        self._binding: Any = None
        self.decoder_run_s = 0.0  # seconds inside onnxruntime's decoder runs, for `edge bench`'s per-step overhead
        if self.fused:
            self._bind(KVBuffers(self.spec, int(manifest.context), self.kv_dtype))

    @property
    def kv_dtype(self) -> type:
        """The fused decoder's cache element type: float16 when its attention runs GroupAttentionF16."""
        return np.float16 if self.half_kv_nodes else np.float32

    @property
    def kv_type(self) -> str:
        """``kv_dtype``'s name, "float16" or "float32", for logs, metrics and benchmark reports."""
        return np.dtype(self.kv_dtype).name

    def _options(self, custom_ops: bool, spin: bool = True) -> Any:
        """Session options; ``spin``: let the intra-op workers spin between parallel sections.

        Only the decoder spins (onnxruntime's default): it runs node after node and step after step. The
        other graphs run once and hand over to the decoder, and a spinning pool keeps a core for some
        milliseconds after its last call: the image embedding's took about 25 ms of a core from the
        `bench` image prefill right after it (the prefill 653 → 628 ms, the vision graph 82 → 73 ms).
        """
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        if not spin and SPINNING not in self.tuning:
            opts.add_session_config_entry(SPINNING, "0")
        for key, value in self.tuning.items():
            if key == "arena":
                opts.enable_cpu_mem_arena = value == "1"
            elif key == "profile":  # `edge bench --profile`: onnxruntime's profiler, files named from this prefix
                opts.enable_profiling = True
                opts.profile_file_prefix = value
            else:
                opts.add_session_config_entry(key, value)
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        if custom_ops and self.kernels.library is not None:
            opts.register_custom_ops_library(str(self.kernels.library))
            # the swapped graph is loaded from bytes: its external data lies in the bundle, not the cwd
            opts.add_session_config_entry("session.model_external_initializers_file_folder_path", str(self.bundle))
        return opts

    def _load(self, path: Path, int8: bool = False, spin: bool = True, half_kv: bool = False) -> Any:
        """A session on one graph file; with our kernels, its int4 MatMulNBits nodes swapped for MatMulInt4, its
        int8 ones for MatMulInt8 when ``int8`` (the decoder: its LM head), and its GroupQueryAttention nodes for
        GroupAttention (unless EDGE_ATTENTION=onnxruntime), which also takes over the image-block If branches and,
        with ``half_kv`` (the decoder) unless EDGE_KV_CACHE=float32, keeps the KV cache in float16.

        The weights are the bundle's own bytes either way (memory-mapped external data). If our kernels fail
        to load, the session falls back to MatMulNBits (an error instead when a path was forced).
        """
        import onnxruntime as ort

        if self.kernels.isa is not None:
            done = swap(
                path.read_bytes(),
                self.kernels.isa,
                attention=self.attention,
                int8=int8,
                image_mask=self.image_mask,
                half_kv=half_kv and self.half_kv,
            )
            if done.matmuls or done.attention or done.int8 or done.gated:
                try:
                    sess = ort.InferenceSession(done.model, sess_options=self._options(True, spin), providers=_CPU)
                    self.kernel_nodes += done.matmuls
                    self.int8_nodes += done.int8
                    self.attention_nodes += done.attention
                    self.image_block_nodes += done.image_blocks
                    self.gated_nodes += done.gated
                    self.half_kv_nodes += done.half_kv
                    return sess
                except Exception as exc:  # onnxruntime raises its own pybind exception types
                    if self._forced:
                        raise BundleError(f"{path}: our int4 kernels cannot run this graph: {exc}") from exc
                    log.warning("int4 kernels: using onnxruntime's MatMulNBits: %s: %s", path.name, exc)
                    self.kernels = KernelChoice(None, None, f"{path.name}: {exc}")
        try:
            return ort.InferenceSession(str(path), sess_options=self._options(False, spin), providers=_CPU)
        except Exception as exc:
            raise BundleError(f"{path}: onnxruntime cannot load this graph: {exc}") from exc

    def _bind(self, cache: KVBuffers) -> None:
        """Bind the cache buffers as past and present of every layer, once."""
        import onnxruntime as ort

        binding = self.sessions["decoder"].io_binding()
        for i, (k, v) in enumerate(cache.values):
            for part, value in (("key", k), ("value", v)):
                binding.bind_ortvalue_input(f"past_key_values.{i}.{part}", value)
                binding.bind_ortvalue_output(f"present.{i}.{part}", value)
        self._logits = np.zeros((1, 1, self.spec.text.vocab_size), np.float32)
        binding.bind_ortvalue_output("logits", ort.OrtValue.ortvalue_from_numpy(self._logits))
        self.kv, self._binding = cache, binding

    @classmethod
    def open(
        cls,
        bundle: Path,
        threads: int | None = None,
        verify: bool = True,
        tuning: dict[str, str] | None = None,
        kernels: str | None = None,
        kv_cache: str | None = None,
    ) -> BundleSessions:
        """``kernels``: auto, a micro-kernel name or off (``edge.kernels.library``); None reads EDGE_KERNELS.
        ``kv_cache``: auto, float16 or float32 (``library.half_kv_cache``); None reads EDGE_KV_CACHE."""
        manifest = verify_bundle(bundle) if verify else load_manifest(bundle)
        return cls(bundle, manifest, threads, tuning, kernels, kv_cache)

    def run(self, name: str, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        if name not in self.sessions:
            raise EngineError(f"the bundle has no {name} graph")
        try:
            return list(self.sessions[name].run(None, feeds))
        except Exception as exc:
            raise EngineError(f"onnxruntime failed in the {name} graph: {exc}") from exc

    def empty_cache(self, batch: int = 1) -> KVCache | BoundCache:
        """A cache with nothing in it. With the fused graph this resets the one bound cache."""
        if self.kv is not None:
            if batch != 1:
                raise EngineError("the fused decoder runs one sequence at a time")
            self.kv.epoch += 1
            return BoundCache(self.kv, self.kv.epoch)
        keys, values = [], []
        for layer in self.spec.text.layers:
            shape = (batch, layer.kv_heads, 0, layer.head_dim)
            keys.append(np.zeros(shape, dtype=np.float32))
            values.append(np.zeros(shape, dtype=np.float32))
        return KVCache(keys, values, 0)

    def decode_step(
        self, embeds: np.ndarray, cache: KVCache | BoundCache, token_types: np.ndarray
    ) -> tuple[np.ndarray, KVCache | BoundCache]:
        """Run the decoder on ``embeds`` ``[1, S, H]`` after ``cache``; returns last-position logits.

        An image block must lie wholly inside one call (see ``prefill_chunks``).
        """
        if isinstance(cache, BoundCache):
            return self._bound_step(embeds, cache, token_types)
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
        t = time.perf_counter()
        outs = dict(zip(self.output_names["decoder"], self.run("decoder", feeds), strict=True))
        self.decoder_run_s += time.perf_counter() - t
        n = len(self.spec.text.layers)
        new = KVCache(
            [outs[f"present.{i}.key"] for i in range(n)],
            [outs[f"present.{i}.value"] for i in range(n)],
            total,
        )
        return outs["logits"], new

    def _bound_step(
        self, embeds: np.ndarray, cache: BoundCache, token_types: np.ndarray
    ) -> tuple[np.ndarray, BoundCache]:
        if cache.buffers is not self.kv or cache.epoch != cache.buffers.epoch:
            raise EngineError("this KV cache was reset by a newer generation")
        seq = embeds.shape[1]
        total = cache.length + seq
        if total > cache.capacity:
            raise EngineError(f"{total} tokens exceed the KV cache capacity of {cache.capacity}")
        b = self._binding
        b.bind_cpu_input("inputs_embeds", np.ascontiguousarray(embeds, dtype=np.float32))
        b.bind_cpu_input("position_ids", np.arange(cache.length, total, dtype=np.int64)[None, :])
        b.bind_cpu_input("mm_token_type_ids", np.ascontiguousarray(token_types, dtype=np.int64))
        t = time.perf_counter()
        try:
            self.sessions["decoder"].run_with_iobinding(b)
        except Exception as exc:
            raise EngineError(f"onnxruntime failed in the decoder graph: {exc}") from exc
        self.decoder_run_s += time.perf_counter() - t
        cache.length = total
        return self._logits.copy(), cache

    def detokenizer(self) -> Any:
        from tokenizers.decoders import DecodeStream

        return DecodeStream(skip_special_tokens=True)
