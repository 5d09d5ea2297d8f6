"""``edge bench``: speed and memory of one bundle on this machine, with same-run references.

Everything is measured in one process run (the PyTorch reference in a child process, so its
memory and threads do not touch the engine's figures), and compared as ratios, because these
machines are shared and noisy. Figures are medians of repeats after a warm-up.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from edge.bench.bandwidth import read_bandwidth_isolated
from edge.bench.kernels import matmul_ceiling
from edge.bench.paired import measure_paired
from edge.bench.peak import best_dot_peak
from edge.bench.report import targets
from edge.bench.structured import structured_decode
from edge.bundle.manifest import graph_bytes, load_manifest
from edge.bundle.recipe import decoder_macs_per_position, weight_matmuls
from edge.spec import SLIDING, ModelSpec

log = logging.getLogger(__name__)

DECODE_CONTEXTS = (128, 1024, 4096)
NEW_TOKENS = 128
PREFILL_TOKENS = 512
AUDIO_SECONDS = 5.0
FRAME_SIZE = (1920, 1080)
QUESTION = "Describe any defect on this part."

PARAGRAPH = (
    "Inspection report for station four. The bracket shows a thin scratch along the upper edge, about "
    "twelve millimetres long, and a shallow dent near the left mounting hole. The weld seam is continuous. "
    "The motor hum is steady at the nominal pitch with one short click after the clamp closes. "
)


def rss_bytes() -> tuple[int, int]:
    """(current, peak) resident set size of this process, from /proc."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) * 1024
    return fields.get("VmRSS", 0), fields.get("VmHWM", 0)


def text_prompt(engine: Any, n_tokens: int) -> Any:
    """A prompt of exactly ``n_tokens`` text tokens (an inspection paragraph, repeated)."""
    from edge.runtime.engine import PreparedPrompt

    ids: list[int] = []
    chunk = engine.tokenizer.encode(PARAGRAPH, add_special_tokens=False).ids
    while len(ids) < n_tokens:
        ids.extend(chunk)
    arr = np.asarray(ids[:n_tokens], dtype=np.int64)[None, :]
    return PreparedPrompt(arr, np.zeros_like(arr), [], [])


def decode_bytes_per_token(engine: Any, context: int) -> int:
    """Bytes one decode step reads: decoder weights (incl. the LM head) + the KV rows attended (in the cache's
    type: float16 with our attention on a quantized bundle)."""
    weights = graph_bytes(engine.manifest.files, ["decoder"])["decoder"]
    spec: ModelSpec = engine.spec
    element = np.dtype(engine.sessions.kv_dtype).itemsize
    kv = 0
    for layer in spec.text.layers:
        rows = min(context, spec.text.sliding_window) if layer.kind == SLIDING else context
        kv += 2 * rows * layer.kv_heads * layer.head_dim * element
    return weights + kv


def _median(fn: Callable[[], float], repeats: int) -> float:
    return statistics.median(fn() for _ in range(repeats))


def first_token_s(engine: Any, prompt: Any, images: Any = (), audio: Any = ()) -> float:
    """Seconds from the call to the first streamed token: preprocessing, embedding and prefill included."""
    from edge.runtime.engine import GenerationParams

    t = time.perf_counter()
    for _ in engine.stream(prompt, images=images, audio=audio, params=GenerationParams(max_new_tokens=1)):
        break
    return time.perf_counter() - t


def decode_call(engine: Any, context: int) -> Callable[[], float]:
    """A timed call: greedy tok/s of NEW_TOKENS steps ending near ``context`` (prompt of context − NEW_TOKENS,
    ≥ 16); the engine is warmed up once first (arena, page faults)."""
    from edge.runtime.engine import GenerationParams

    p = text_prompt(engine, max(context - NEW_TOKENS, 16))
    engine.generate(p, params=GenerationParams(max_new_tokens=8, min_new_tokens=8))
    params = GenerationParams(max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS)
    return lambda: float(engine.generate(p, params=params).timings.decode_tok_s)


def prefill_call(engine: Any) -> Callable[[], float]:
    """A timed call: tok/s of prefilling a PREFILL_TOKENS text prompt (chunked as the engine does); warmed up once."""
    p = text_prompt(engine, PREFILL_TOKENS)

    def once() -> float:
        t = time.perf_counter()
        engine.prefill(p)
        return PREFILL_TOKENS / (time.perf_counter() - t)

    once()
    return once


def decode_rate(engine: Any, context: int, repeats: int) -> float:
    """Median of ``decode_call``'s tok/s."""
    return _median(decode_call(engine, context), repeats)


def prefill_rate(engine: Any, repeats: int) -> float:
    """Median of ``prefill_call``'s tok/s."""
    return _median(prefill_call(engine), repeats)


def step_overhead(engine: Any, repeats: int) -> float:
    """Share of a decode step at context 128 spent outside onnxruntime's decoder run (the weight matmuls,
    attention and the rest of the graph): Python, the embedding graph, sampling, binding and copies."""
    from edge.runtime.engine import GenerationParams

    p = text_prompt(engine, 16)
    params = GenerationParams(max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS)

    def once() -> float:
        engine.sessions.decoder_run_s = 0.0
        engine.prefill(p)
        prefill_run = engine.sessions.decoder_run_s
        engine.sessions.decoder_run_s = 0.0
        timings = engine.generate(p, params=params).timings
        return 1.0 - (engine.sessions.decoder_run_s - prefill_run) / timings.decode_s

    once()
    return _median(once, repeats)


def measure_engine(bundle: Path, threads: int, repeats: int, contexts: tuple[int, ...]) -> dict[str, Any]:
    """Every engine-side figure: load, RSS, decode per context, prefill, TTFTs, frames/s."""
    from edge.bundle.verify import verify_bundle
    from edge.runtime.engine import Engine
    from edge.samples import jpeg_bytes, machine_audio, part_image, wav_bytes

    out: dict[str, Any] = {}
    rss_before, _ = rss_bytes()
    t0 = time.perf_counter()
    verify_bundle(bundle)
    out["verify_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    engine = Engine.load(bundle, threads=threads, verify=False)
    out["load_s"] = time.perf_counter() - t0
    out["rss_after_load_bytes"] = rss_bytes()[0]
    out["rss_before_load_bytes"] = rss_before
    out["decoder"] = engine.manifest.graphs["decoder"].get("kind", "reference")
    out["kernels"] = engine.sessions.kernels.label  # which weight-matmul kernels ran (EDGE_KERNELS)
    out["kernel_nodes"] = engine.sessions.kernel_nodes
    out["int8_nodes"] = engine.sessions.int8_nodes  # the int8 LM head on our MatMulInt8
    out["attention_nodes"] = engine.sessions.attention_nodes  # attention layers on our GroupAttention
    out["kv_cache_bytes"] = getattr(engine.sessions.kv, "nbytes", 0)
    out["kv_cache_dtype"] = engine.sessions.kv_type  # float16: GroupAttentionF16 (EDGE_KV_CACHE)

    decode: dict[str, float] = {}
    for ctx in contexts:
        if ctx > engine.context:
            log.warning("context %d is beyond the bundle's %d; skipped", ctx, engine.context)
            continue
        decode[str(ctx)] = decode_rate(engine, ctx, repeats)
        log.info("decode at context %d: %.1f tok/s", ctx, decode[str(ctx)])
    out["decode_tok_s_by_context"] = decode
    out["prefill_tok_s"] = prefill_rate(engine, repeats)
    out["step_overhead_fraction"] = step_overhead(engine, repeats)
    out["structured"] = structured_decode(engine, repeats)

    jpeg = jpeg_bytes(part_image(*FRAME_SIZE, seed=3))
    wav = wav_bytes(machine_audio(AUDIO_SECONDS))

    def ttft(audio: list[bytes]) -> Callable[[], float]:
        return lambda: first_token_s(engine, QUESTION, images=[jpeg], audio=audio)  # from JPEG (and WAV) bytes

    ttft([])()
    out["image_ttft_s"] = _median(ttft([]), repeats)
    prepared = engine.prepare(QUESTION, images=[jpeg])
    # from prepared pixels, as the PyTorch reference is timed
    out["image_ttft_model_s"] = _median(lambda: first_token_s(engine, prepared), repeats)
    out["image_prompt_tokens"] = int(prepared.input_ids.shape[1])
    out["image_soft_tokens"] = prepared.images[0].num_soft_tokens
    if engine.spec.audio is not None:
        ttft([wav])()
        out["image_audio_ttft_s"] = _median(ttft([wav]), repeats)
        out["image_audio_prompt_tokens"] = int(engine.prepare(QUESTION, images=[jpeg], audio=[wav]).input_ids.shape[1])
    out["frames_per_s"] = frames_per_second(jpeg, engine.processor)
    out["rss_bytes"], out["peak_rss_bytes"] = rss_bytes()
    out["bytes_per_token_by_context"] = {str(c): decode_bytes_per_token(engine, c) for c in contexts}
    out["bundle"] = {
        "id": engine.manifest.bundle_id,
        "quantization": engine.manifest.quantization.get("name"),
        "size_bytes": sum(int(f["size"]) for f in engine.manifest.files.values()),
        "context": engine.context,
    }
    return out


def frames_per_second(jpeg: bytes, processor: dict[str, Any], seconds: float = 3.0) -> float:
    """1080p JPEG bytes → model patches on one core (OpenCV pinned to one thread)."""
    import cv2

    from edge.runtime import media

    budget = int(processor["max_soft_tokens"])
    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        media.as_prepared_image(jpeg, budget, processor)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            media.as_prepared_image(jpeg, budget, processor)
            n += 1
        return n / (time.perf_counter() - t0)
    finally:
        cv2.setNumThreads(before)


def measure_torch(checkpoint: Path, bundle: Path, threads: int, repeats: int) -> dict[str, Any]:
    """PyTorch eager fp32 on the same checkpoint, in a child process (its memory is not ours)."""
    cmd = [sys.executable, "-m", "edge.bench.torch_ref", str(checkpoint), str(bundle), str(threads), str(repeats)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=False)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["(no output)"]
        log.warning("PyTorch reference failed: %s", tail[0])
        return {"error": tail[0]}
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def machine() -> dict[str, Any]:
    model, mem = "", 0
    with contextlib.suppress(OSError):
        model = next(
            (
                ln.split(":", 1)[1].strip()
                for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")
            ),
            "",
        )
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem = int(Path("/proc/meminfo").read_text().split()[1]) * 1024
    import onnxruntime

    return {
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "memory_bytes": mem,
        "python": platform.python_version(),
        "onnxruntime": onnxruntime.__version__,
        "load_average": os.getloadavg()[0],
    }


def bench(
    bundle: Path,
    *,
    threads: int,
    checkpoint: Path | None = None,
    repeats: int = 3,
    contexts: tuple[int, ...] = DECODE_CONTEXTS,
    torch_reference: bool = True,
) -> dict[str, Any]:
    """All figures for one bundle, as the JSON ``edge bench --json`` writes."""
    report: dict[str, Any] = {"machine": machine(), "threads": threads}
    report.update(prefill_tokens=PREFILL_TOKENS, audio_seconds=AUDIO_SECONDS)  # the workload, for the table
    before = read_bandwidth_isolated(threads)
    eng = measure_engine(bundle, threads, repeats, contexts)
    report.update(eng)
    report["structured_vs_unconstrained"] = eng["structured"]["ratio"]
    try:  # after the engine's peak RSS was taken; building the graph needs the onnx package (export extra)
        report["matmul_ceiling"] = matmul_ceiling(bundle, threads)
    except ImportError:
        report["matmul_ceiling"] = None
    report["matmulnbits"] = None
    report["decode_vs_matmulnbits"] = None
    if eng["kernel_nodes"]:  # our kernels ran: the same bundle on MatMulNBits, interleaved with ours, for the ratios
        ref = measure_paired(bundle, threads, repeats, contexts)
        report["matmulnbits"] = ref
        ratios = ref["decode_vs_matmulnbits_by_context"]
        report["decode_vs_matmulnbits_by_context"] = ratios
        report["decode_vs_matmulnbits"] = min(ratios.values()) if ratios else None
        report["prefill_vs_matmulnbits"] = ref["prefill_vs_matmulnbits"]
        report["image_ttft_model_vs_matmulnbits"] = ref["image_ttft_model_vs_matmulnbits"]
    runs = [before, *(read_bandwidth_isolated(threads) for _ in range(3))]
    bw = dict(max(runs, key=lambda b: b["bytes_per_s"]))
    bw["measurements_bytes_s"] = [b["bytes_per_s"] for b in runs]
    report["read_bandwidth_bytes_s"] = bw["bytes_per_s"]
    report["read_bandwidth"] = bw
    # the prefill's ceiling: its decoder multiply-adds at the int8 dot-product peak of the path that ran
    peak = best_dot_peak(threads)
    report["dot_peak"] = asdict(peak) if peak is not None else None
    macs = decoder_macs_per_position(weight_matmuls(load_manifest(bundle).extra) or [])
    if peak is not None and macs and eng["kernel_nodes"]:
        report["prefill_peak_fraction"] = report["prefill_tok_s"] * macs / peak.mac_per_s
    key = "1024" if "1024" in eng["decode_tok_s_by_context"] else next(iter(eng["decode_tok_s_by_context"]), None)
    report["decode_context"] = int(key) if key else None
    report["decode_tok_s"] = eng["decode_tok_s_by_context"].get(key) if key else None
    if key:
        report["decode_bytes_per_token"] = eng["bytes_per_token_by_context"][key]
        report["decode_bandwidth_fraction"] = (
            report["decode_bytes_per_token"] * report["decode_tok_s"] / report["read_bandwidth_bytes_s"]
        )
        report["decode_bound_tok_s"] = report["read_bandwidth_bytes_s"] / report["decode_bytes_per_token"]
    read = (report["matmul_ceiling"] or {}).get("read_steps_per_s")
    report["decode_weights_read_fraction_by_context"] = (
        {ctx: rate / read for ctx, rate in eng["decode_tok_s_by_context"].items()} if read else None
    )
    report["torch"] = None
    report["image_ttft_vs_torch"] = None
    if torch_reference and checkpoint is not None:
        ref = measure_torch(checkpoint, bundle, threads, repeats)
        report["torch"] = ref
        if "image_ttft_s" in ref:
            report["image_ttft_vs_torch"] = report["image_ttft_s"] / ref["image_ttft_s"]  # ours incl. decoding
            report["image_ttft_model_vs_torch"] = report["image_ttft_model_s"] / ref["image_ttft_s"]
        if "decode_tok_s" in ref and report.get("decode_tok_s_by_context", {}).get("128"):
            report["decode_vs_torch_at_128"] = report["decode_tok_s_by_context"]["128"] / ref["decode_tok_s"]
        if "prefill_tok_s" in ref:
            report["prefill_vs_torch"] = report["prefill_tok_s"] / ref["prefill_tok_s"]
    report["targets"] = targets(report)
    report["machine"]["load_average_after"] = os.getloadavg()[0]
    return report
