"""The station memory plan: weights + KV cache + runtime overhead at a context, against a station's budget.

For a bundle the plan reads what the bundle records (file sizes, the typed recipe, its weight matmuls;
``plan_for_bundle``) and counts what the chosen kernel path holds: our kernels (``edge``) use the int4
weights in place, onnxruntime's ``MatMulNBits`` pre-packs them. Without a bundle the same plan is
estimated from shapes, so the real 12B can be planned on any machine without building a single weight.

>>> plan = plan_memory(spec, context=4096, recipe=recipe("int4"))
>>> plan["verdict"], print(format_plan(plan))
"""

from __future__ import annotations

import textwrap
from typing import Any

from edge.bundle.estimate import derived_matmuls, estimate_weight_bytes
from edge.bundle.manifest import Manifest, graph_bytes
from edge.bundle.recipe import QuantRecipe, WeightMatMul, weight_matmuls
from edge.errors import ConfigError
from edge.kernels.library import INT8_GRAPHS, half_kv_cache, takes, takes_int8
from edge.spec import SLIDING, ModelSpec

GiB = 2**30
MiB = 2**20
DEFAULT_BUDGET_BYTES = 16 * GiB
DEFAULT_RESERVE_BYTES = 3 * GiB  # OS, page cache for the bundle's small files, the station's own software
PROCESS_BASELINE_BYTES = 400 * MiB
ARENA_WEIGHT_FRACTION = 0.02
KV_COPIES = {"fused": 1, "reference": 2}
SLIDING_SLACK = 64  # the fused runtime's sliding buffers hold window + 63 rows (GroupQueryAttention compacts by 64)
TIGHT_FRACTION = 0.10
KERNELS = ("edge", "matmulnbits")  # our int4 kernels (edge/kernels) or onnxruntime's MatMulNBits for every node

ASSUMPTIONS = (
    "weights count once at their size on disk: onnxruntime copies (or pre-packs) each initializer at load and "
    "frees the original, measured here as resident ≈ disk for fp32 MatMul weights",
    "MatMulNBits with accuracy_level 4 (int8 compute) pre-packs one extra fp32 block sum per block per output "
    "column: +4/block_size bytes per weight (measured 1.22× disk for int4/32, 1.12× for int8/32 on 3840×15360 "
    "layers with onnxruntime 1.31); with our kernels (edge) the int4 nodes they take read the bundle's bytes in "
    "place (memory-mapped, resident once read) and hold nothing else, as do the decoder's int8 ones (its LM "
    "head); the other int8 nodes (vision and audio projections) stay on MatMulNBits",
    "int4/int8 linear weights are MatMulNBits blocks (bits per weight + one fp32 scale per block, + packed zero "
    "points when asymmetric); an int8 embedding is per-row (1 byte + one fp32 scale per row); norm weights, "
    "biases and the vision position table stay fp32",
    "fused decoder (the default): the runtime allocates the KV cache once at load, bound in place (IOBinding), "
    f"so it is counted once: full-attention layers hold the whole context, sliding layers window + "
    f"{SLIDING_SLACK - 1} rows; the reference decoder feeds past as numpy arrays and receives a fresh present, "
    "so both are alive during a step (counted twice) and sliding layers cache at most sliding_window − 1",
    "the KV cache holds float16 (2 bytes an element) where the fused decoder's attention runs our kernels on a "
    "quantized bundle (EDGE_KV_CACHE=auto), float32 otherwise (MatMulNBits, fp32 bundles, EDGE_KV_CACHE=float32)",
    "the token-embedding table stays memory-mapped and only the rows in use are paged in, so it is listed but "
    "not counted (the runtime drops its mapped weight pages after load)",
    "prefill activations are for the last chunk of a full context (float32): attention scores and softmax for "
    "the largest layer (heads × chunk × keys × 4 B, twice), one mask per layer type, 4 hidden-state copies, "
    "Q/K/V, 3 MLP intermediates and the last-token logits; the runtime must prefill in chunks of at most "
    "this many tokens for the figure to hold",
    f"onnxruntime arena slack = the activation peak again (the arena grows in power-of-two steps; measured ≈2× "
    f"the live activations on a 512-token MatMulNBits prefill) + {ARENA_WEIGHT_FRACTION:.0%} of weights for "
    "fragmentation and kernel workspaces",
    f"process baseline {PROCESS_BASELINE_BYTES // MiB} MiB: Python + numpy + onnxruntime + opencv imports "
    "(~65 MiB measured), onnxruntime's native library pages (~90 MiB), a 262k-vocabulary tokenizer (~180 MiB "
    "measured with a synthetic one) and the daemon's gRPC and metrics",
    "memory-mapped pages of the bundle files beyond the weights themselves are left to the OS reserve",
)


def plan_memory(
    spec: ModelSpec,
    *,
    context: int,
    recipe: QuantRecipe | None = None,
    weight_bytes: dict[str, int] | None = None,
    matmuls: list[WeightMatMul] | None = None,
    kernels: str = "edge",
    budget_bytes: int = DEFAULT_BUDGET_BYTES,
    reserve_bytes: int = DEFAULT_RESERVE_BYTES,
    kv_dtype_bytes: int | None = None,
    prefill_chunk: int = 512,
    decoder: str = "fused",
) -> dict[str, Any]:
    """Peak resident memory of serving ``spec`` at ``context`` tokens, and a verdict against the budget.

    ``weight_bytes`` (graph name → bytes on disk) and ``matmuls`` (the bundle's recorded MatMulNBits
    layouts) replace the shape estimates when the bundle exists; ``recipe`` is its quantization (None: fp32);
    ``kernels`` the weight-matmul path the station runs (``edge`` or ``matmulnbits``); ``kv_dtype_bytes`` the
    cache's element size, None for the runtime's default (``kv_bytes``).
    """
    rec = recipe or QuantRecipe()
    if kv_dtype_bytes is None:
        kv_dtype_bytes = kv_bytes(rec, kernels, decoder)
    for name, value in (("context", context), ("prefill_chunk", prefill_chunk), ("kv_dtype_bytes", kv_dtype_bytes)):
        if value < 1:
            raise ConfigError(f"{name} must be at least 1, got {value}")
    if decoder not in KV_COPIES:
        raise ConfigError(f"decoder must be one of {', '.join(KV_COPIES)}, got {decoder!r}")
    if kernels not in KERNELS:
        raise ConfigError(f"kernels must be one of {', '.join(KERNELS)}, got {kernels!r}")
    if budget_bytes < 1 or reserve_bytes < 0:
        raise ConfigError(f"budget must be positive and reserve non-negative, got {budget_bytes} and {reserve_bytes}")
    if weight_bytes is None:
        weights = estimate_weight_bytes(spec, rec)
        source = "estimated from shapes and the quantization recipe"
    else:
        weights = {name: int(size) for name, size in weight_bytes.items()}
        source = "sizes of the bundle's graph files"
    graphs = set(weights) | ({"decoder"} if "lm_head" in weights else set())
    recorded = matmuls is not None
    layouts = matmuls if matmuls is not None else derived_matmuls(spec, rec)
    prepack = sum(_prepacked_bytes(m, kernels) for m in layouts if m.graph in graphs)
    t = spec.text
    window = max(t.sliding_window - 1, 0)
    # fused: buffers allocated once at their full size; reference: grown to what the context needs
    sliding_tokens = window + SLIDING_SLACK if decoder == "fused" else min(context, window)
    kv_full = t.kv_bytes_per_token(kv_dtype_bytes) * context
    kv_sliding = t.sliding_kv_bytes(kv_dtype_bytes) * sliding_tokens // window if window else 0
    kv = kv_full + kv_sliding
    chunk = min(prefill_chunk, context)
    activations = _activation_bytes(spec, context, chunk)
    weights_total = sum(weights.values())
    runtime = {
        "prepacked_block_sums_bytes": prepack,
        "kv_step_copy_bytes": (KV_COPIES[decoder] - 1) * kv,
        "activations_bytes": sum(activations.values()),
        "arena_slack_bytes": sum(activations.values()) + int(ARENA_WEIGHT_FRACTION * weights_total),
        "process_baseline_bytes": PROCESS_BASELINE_BYTES,
    }
    mapped = weights.get("embedding", 0)
    total = weights_total - mapped + kv + sum(runtime.values())
    usable = budget_bytes - reserve_bytes
    headroom = usable - total
    if headroom < 0:
        verdict = "does not fit"
    elif headroom < TIGHT_FRACTION * usable:
        verdict = "tight"
    else:
        verdict = "fits"
    return {
        "context": context,
        "prefill_chunk": chunk,
        "kv_dtype_bytes": kv_dtype_bytes,
        "weights_source": source,
        "kernels": kernels,
        "matmuls_source": "recorded in the bundle" if recorded else "derived from shapes and the recipe",
        "weights": weights,
        "weights_bytes": weights_total,
        "mapped_bytes": mapped,
        "decoder": decoder,
        "read_per_token_bytes": weights.get("decoder", 0) + weights.get("lm_head", 0),
        "kv_cache": {
            "full_bytes": kv_full,
            "full_tokens": context,
            "sliding_bytes": kv_sliding,
            "sliding_tokens": sliding_tokens,
        },
        "kv_cache_bytes": kv,
        "activations": activations,
        "runtime": runtime,
        "runtime_bytes": sum(runtime.values()),
        "total_bytes": total,
        "budget_bytes": budget_bytes,
        "reserve_bytes": reserve_bytes,
        "usable_bytes": usable,
        "headroom_bytes": headroom,
        "verdict": verdict,
        "assumptions": list(ASSUMPTIONS),
    }


def kv_bytes(rec: QuantRecipe, kernels: str, decoder: str) -> int:
    """Bytes per cached key or value element by default (EDGE_KV_CACHE=auto, the runtime's own rule in
    ``library.half_kv_cache``): 2 where the fused decoder's attention runs our GroupAttentionF16, else 4."""
    ours = kernels == "edge" and decoder == "fused"
    return 2 if ours and half_kv_cache(None, quantized=rec.decoder.scheme != "fp32") else 4


def plan_for_bundle(
    manifest: Manifest, *, kernels: str = "edge", context: int | None = None, kv_dtype_bytes: int | None = None
) -> dict[str, Any]:
    """The plan of a built bundle: its own file sizes, recipe and weight matmuls, on the chosen kernel path (and
    KV cache element size: None for the runtime's default there)."""
    return plan_memory(
        manifest.spec,
        context=context or manifest.context,
        recipe=QuantRecipe.from_dict(manifest.quantization),
        weight_bytes=graph_bytes(manifest.files, manifest.graphs),
        matmuls=weight_matmuls(manifest.extra),
        kernels=kernels,
        kv_dtype_bytes=kv_dtype_bytes,
        budget_bytes=int(manifest.memory_plan.get("budget_bytes", DEFAULT_BUDGET_BYTES)),
        decoder=manifest.graphs["decoder"].get("kind", "reference") if "decoder" in manifest.graphs else "fused",
    )


def _prepacked_bytes(m: WeightMatMul, kernels: str) -> int:
    """What a MatMulNBits node holds beyond its bytes on disk: one fp32 block sum per block at accuracy level 4.

    Nothing when our kernels take the node: they read the bundle's bytes in place (int8 nodes: the decoder's).
    """
    layout = (m.bits, m.block_size, m.accuracy_level, m.zero_points)
    if kernels == "edge" and (takes(*layout) or (m.graph in INT8_GRAPHS and takes_int8(*layout))):
        return 0
    return m.count * m.blocks * 4 if m.accuracy_level == 4 else 0


def _activation_bytes(spec: ModelSpec, context: int, chunk: int) -> dict[str, int]:
    """float32 intermediates alive at the peak of a prefill chunk that ends at ``context``."""
    t = spec.text
    f = 4
    # keys a query attends to: the whole context on full layers; past (≤ window − 1) + chunk on sliding ones
    sliding_keys = min(context, t.sliding_window - 1 + chunk)
    keys = {lay.kind: sliding_keys if lay.kind == SLIDING else context for lay in t.layers}
    return {
        "attention_scores_bytes": 2 * max(t.num_heads * chunk * keys[lay.kind] * f for lay in t.layers),
        "masks_bytes": sum(chunk * n * f for n in keys.values()),
        "hidden_states_bytes": 4 * chunk * t.hidden_size * f,
        "qkv_bytes": 2 * max(chunk * (t.num_heads + 2 * lay.kv_heads) * lay.head_dim * f for lay in t.layers),
        "mlp_bytes": 3 * chunk * t.intermediate_size * f,
        "logits_bytes": 2 * t.vocab_size * f,
    }


def format_plan(plan: dict[str, Any], *, assumptions: bool = True) -> str:
    """The plan as a table in GiB, for the CLI and the README."""
    g = lambda b: f"{b / GiB:10.2f}"  # noqa: E731
    kv = plan["kv_cache"]
    kv_type = {2: "float16", 4: "float32"}.get(plan["kv_dtype_bytes"], f"{plan['kv_dtype_bytes']} B")
    mapped = plan.get("mapped_bytes", 0)
    rows: list[tuple[str, int]] = [
        (f"weights: {name}" + (" (memory-mapped, not counted)" if name == "embedding" and mapped else ""), size)
        for name, size in plan["weights"].items()
    ]
    rows += [
        ("weights resident", plan["weights_bytes"] - mapped),
        (f"KV cache: full-attention layers ({kv['full_tokens']} tokens, {kv_type})", kv["full_bytes"]),
        (f"KV cache: sliding layers ({kv['sliding_tokens']} tokens, {kv_type})", kv["sliding_bytes"]),
    ]
    labels = {
        "prepacked_block_sums_bytes": f"runtime: MatMulNBits pre-packed block sums ({plan['kernels']} kernels)",
        "kv_step_copy_bytes": "runtime: second KV copy during a step",
        "activations_bytes": f"runtime: prefill activations ({plan['prefill_chunk']}-token chunk)",
        "arena_slack_bytes": "runtime: onnxruntime arena slack",
        "process_baseline_bytes": "runtime: process baseline",
    }
    rows += [(labels.get(key, f"runtime: {key}"), size) for key, size in plan["runtime"].items()]
    width = max(len(label) for label, _ in rows) + 2
    lines = [
        f"memory plan at context {plan['context']} (weights {plan['weights_source']})",
        f"  {'component':<{width}}{'GiB':>10}",
    ]
    lines += [f"  {label:<{width}}{g(size)}" for label, size in rows]
    usable = plan["usable_bytes"]
    share = plan["headroom_bytes"] / usable if usable > 0 else float("-inf")
    usable_label = f"usable (budget {plan['budget_bytes'] / GiB:.2f} − reserve {plan['reserve_bytes'] / GiB:.2f})"
    lines += [
        "  " + "-" * (width + 10),
        f"  {'total':<{width}}{g(plan['total_bytes'])}",
        f"  {usable_label:<{width}}{g(usable)}",
        f"  {'headroom':<{width}}{g(plan['headroom_bytes'])}  ({share:.0%} of usable)",
        f"  verdict: {plan['verdict']}",
    ]
    if assumptions:
        lines.append("  assumptions:")
        for text in plan["assumptions"]:
            lines += textwrap.wrap(text, 104, initial_indent="    - ", subsequent_indent="      ")
    return "\n".join(lines)


__all__ = [
    "DEFAULT_BUDGET_BYTES",
    "DEFAULT_RESERVE_BYTES",
    "format_plan",
    "plan_for_bundle",
    "plan_memory",
]
