"""GroupAttention, each path, through onnxruntime: against a float64 numpy reference, and against the
com.microsoft GroupQueryAttention node it replaces, in place over consecutive decode steps as the runtime binds it.

Tolerance: an output is a convex combination of value rows, so its error is at most max|V| times the error
of the softmax weights. Those come from float32 scores (a dot product of head_dim terms is off by up to about
2^-24 × Σ|q_i k_i|, which shifts a weight by that much relative) and an exp polynomial (about 1e-7 relative),
so outputs agree to max|V| × (2e-5 + 2^-24 × scale × max Σ|q_i k_i|) + 1e-6; present rows are copies and agree
exactly. GroupAttentionF16 (a float16 cache) is held to the same bound against a reference that rounds the new
rows to float16 as the op stores them, and to bit equality with GroupAttention on those rounded values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.kernels.library import PATHS
from tests.kernels.attention_reference import Case, reference, session

RTOL = 2e-5


def _check(
    got: list[np.ndarray],
    feeds: dict[str, np.ndarray],
    case: Case,
    scale: float = 1.0,
    window: int = 0,
    image_mask: str = "sliding",
) -> None:
    want = reference(feeds, case.heads, case.kv_heads, scale, window, image_mask)
    bound = _tolerance(feeds, case.head_dim, scale)
    assert got[0].shape == (case.batch, case.seq, case.heads * case.head_dim)
    np.testing.assert_array_less(np.abs(got[0] - want[0]), bound)
    # present: past with this call's rows written (in the cache's type); rows past the new ones untouched
    cache = feeds["past_key"].dtype
    assert got[1].dtype == cache
    np.testing.assert_array_equal(got[1], want[1].astype(cache))
    np.testing.assert_array_equal(got[2], want[2].astype(cache))


def _tolerance(feeds: dict[str, np.ndarray], d: int, scale: float) -> float:
    """How far a float32 attention output may be from the exact one: max|V| × (RTOL + 2⁻²⁴ × the largest
    scale · Σ|q_i k_i| over every query and cached key), the second term the float32 scores' rounding."""
    q = np.abs(feeds["query"]).reshape(-1, d).astype(np.float64)
    k = np.abs(np.concatenate([feeds["past_key"].reshape(-1, d), feeds["key"].reshape(-1, d)]))
    score_terms = scale * float((q @ k.T.astype(np.float64)).max())
    v_max = max(float(np.abs(feeds["past_value"]).max(initial=0.0)), float(np.abs(feeds["value"]).max()))
    return v_max * (RTOL + 2.0**-24 * score_terms) + 1e-6


@pytest.mark.parametrize("isa", [p for p in PATHS if p != "avxvnni"])  # avxvnni runs the avx2 build
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kv_heads=st.integers(1, 3),
    group=st.integers(1, 5),
    head_dim=st.sampled_from([16, 32, 48, 64, 256]),
    seq=st.one_of(st.just(1), st.integers(2, 70)),
    past=st.one_of(st.integers(0, 40), st.integers(200, 1100)),
    spare=st.integers(0, 9),
    batch=st.integers(1, 2),
    scale=st.sampled_from([1.0, 0.125, 0.0]),
    window=st.sampled_from([0, 0, 1, 7, 16, 300]),
    half=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_every_path_matches_the_reference(
    library: Path,
    isa: str,
    kv_heads: int,
    group: int,
    head_dim: int,
    seq: int,
    past: int,
    spare: int,
    batch: int,
    scale: float,
    window: int,
    half: bool,
    seed: int,
) -> None:
    """Decode (one position, its context split across chunks past 256 rows) and prefill (blocks of positions,
    causal inside the block and across blocks), KV groups of 1 to 5 heads, scale 0 meaning 1/sqrt(head_dim),
    with and without a local window over a cache that keeps every row, in float32 or float16."""
    case = Case(batch, seq, past, past + seq + spare, kv_heads * group, kv_heads, head_dim)
    magnitude = float(np.random.default_rng(seed).choice([0.1, 1, 4]))
    feeds = case.feeds(np.random.default_rng(seed), magnitude=magnitude, half=half)
    attrs = {"local_window_size": window} if window else {}
    op = "GroupAttentionF16" if half else "GroupAttention"
    got = session(case.heads, kv_heads, scale, op=op, isa=isa, library=library, **attrs).run(None, feeds)
    _check(got, feeds, case, scale if scale else 1.0 / np.sqrt(head_dim), window)


@pytest.mark.parametrize("isa", [p for p in PATHS if p != "avxvnni"])
@pytest.mark.parametrize(
    ("heads", "kv_heads", "head_dim", "seq", "past"),
    [(8, 1, 256, 1, 4095), (8, 1, 256, 1, 1000), (16, 1, 512, 1, 3000), (8, 1, 256, 300, 700), (16, 1, 512, 287, 0)],
)
@pytest.mark.parametrize("op", ["GroupAttention", "GroupAttentionF16"])
def test_decoder_shapes(
    library: Path, isa: str, heads: int, kv_heads: int, head_dim: int, seq: int, past: int, op: str
) -> None:
    """The bench preset's and the 12B's full layers: a decode step at long context, an image-sized prefill."""
    case = Case(1, seq, past, 4096, heads, kv_heads, head_dim)
    feeds = case.feeds(np.random.default_rng(seq + past), half=op == "GroupAttentionF16")
    _check(session(heads, kv_heads, 1.0, op=op, isa=isa, library=library).run(None, feeds), feeds, case)


_RUNS = st.lists(st.tuples(st.sampled_from([0, 1, 2, 3]), st.integers(1, 40)), min_size=1, max_size=6)


@pytest.mark.parametrize("isa", [p for p in PATHS if p != "avxvnni"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kv_heads=st.integers(1, 2),
    group=st.integers(1, 4),
    head_dim=st.sampled_from([16, 32, 64]),
    runs=_RUNS,
    past=st.one_of(st.integers(0, 40), st.integers(200, 400)),
    batch=st.integers(1, 2),
    window=st.sampled_from([0, 1, 7, 16, 300]),
    image_mask=st.sampled_from(["sliding", "all"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_image_blocks_match_the_reference(
    library: Path,
    isa: str,
    kv_heads: int,
    group: int,
    head_dim: int,
    runs: list[tuple[int, int]],
    past: int,
    batch: int,
    window: int,
    image_mask: str,
    seed: int,
) -> None:
    """With the call's mm_token_type_ids, a block of image or video tokens (types 1 and 2, runs of either
    joining) attends both ways, text causally; blocks longer than the window tell the two image masks apart.
    One batch row may hold no block at all (plain causal attention)."""
    types = np.concatenate([np.full(n, t, np.int64) for t, n in runs])
    seq = len(types)
    case = Case(batch, seq, past, past + seq + 3, kv_heads * group, kv_heads, head_dim)
    feeds = case.feeds(np.random.default_rng(seed))
    rows = [types, np.where((types == 1) | (types == 2), 0, types)][:batch]
    feeds["mm_token_type_ids"] = np.stack(rows)
    attrs: dict[str, int | str] = {"image_mask": image_mask, **({"local_window_size": window} if window else {})}
    got = session(case.heads, kv_heads, 1.0, isa=isa, library=library, blocks=True, **attrs).run(None, feeds)
    _check(got, feeds, case, 1.0, window, image_mask)


def test_bad_image_blocks_are_named(library: Path) -> None:
    case = Case(1, 3, 5, 64, 4, 2, 32)
    feeds = {**case.feeds(np.random.default_rng(0)), "mm_token_type_ids": np.ones((1, 4), np.int64)}
    with pytest.raises(Exception, match=r"mm_token_type_ids must be \[batch, seq\] = \[1, 3\]; got \[1, 4\]"):
        session(4, 2, 1.0, library=library, blocks=True).run(None, feeds)
    feeds["mm_token_type_ids"] = np.ones((1, 3), np.int64)
    with pytest.raises(Exception, match="image_mask must be sliding or all, not causal"):
        session(4, 2, 1.0, library=library, blocks=True, image_mask="causal").run(None, feeds)


def _bound(sess: Any, feeds: dict[str, np.ndarray]) -> tuple[Any, Any, np.ndarray, np.ndarray]:
    """An IOBinding with past and present on one buffer, as the runtime binds the decoder's cache."""
    import onnxruntime as ort

    keys, values = feeds["past_key"].copy(), feeds["past_value"].copy()
    b = sess.io_binding()
    k, v = ort.OrtValue.ortvalue_from_numpy(keys), ort.OrtValue.ortvalue_from_numpy(values)
    b.bind_ortvalue_input("past_key", k), b.bind_ortvalue_input("past_value", v)
    b.bind_ortvalue_output("present_key", k), b.bind_ortvalue_output("present_value", v)
    return b, (k, v), keys, values


def test_in_place_steps_equal_group_query_attention(library: Path) -> None:
    """A 40-position prefill and 30 decode steps, each op on its own cache bound in place: the same outputs,
    and the same cache rows, as onnxruntime's GroupQueryAttention."""
    rng = np.random.default_rng(7)
    case = Case(1, 40, 0, 128, 8, 1, 256)
    first = case.feeds(rng)
    ours, gqa = session(8, 1, 1.0, library=library), session(8, 1, 1.0, op="GroupQueryAttention")
    runs = [(s, *_bound(s, first)) for s in (ours, gqa)]
    total, seq = 0, 40
    for step in range(31):
        total += seq
        feeds = Case(1, seq, total - seq, 128, 8, 1, 256).feeds(rng)
        outs = []
        for sess, binding, *_ in runs:
            for name in ("query", "key", "value", "seqlens_k", "total_sequence_length"):
                binding.bind_cpu_input(name, feeds[name])
            binding.bind_output("output")  # its shape changes after the prefill
            sess.run_with_iobinding(binding)
            outs.append(binding.get_outputs()[2].numpy())  # bound after the cache's two
            assert outs[-1].shape == (1, seq, 8 * 256)
        # each op within its tolerance of the exact result, so within twice that of each other
        step_feeds = {
            **feeds,
            "past_key": runs[0][3][:, :, : total - seq],
            "past_value": runs[0][4][:, :, : total - seq],
        }
        atol = 2 * _tolerance(step_feeds, 256, 1.0)
        np.testing.assert_allclose(outs[0], outs[1], rtol=0, atol=atol, err_msg=f"step {step}")
        seq = 1
    for i in (3, 4):
        np.testing.assert_array_equal(runs[0][i][:, :, :total], runs[1][i][:, :, :total])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"seqlens_k": np.array([200], np.int32)}, r"seqlens_k \+ 1 = 201 must lie in \[seq = 3, capacity = 64\]"),
        ({"seqlens_k": np.array([0], np.int32)}, r"seqlens_k \+ 1 = 1 must lie in"),
        ({"key": np.zeros((1, 3, 16), np.float32), "value": np.zeros((1, 3, 16), np.float32)}, "shapes disagree"),
        ({"key": np.zeros((1, 3, 16), np.float32)}, r"of one shape; got query \[1, 3, 128\], key \[1, 3, 16\]"),
        ({"seqlens_k": np.array([5, 5], np.int32)}, "one length per batch row"),
    ],
)
def test_bad_inputs_are_named(library: Path, change: dict[str, np.ndarray], message: str) -> None:
    case = Case(1, 3, 5, 64, 4, 2, 32)
    feeds = {**case.feeds(np.random.default_rng(0)), **change}
    with pytest.raises(Exception, match=message):
        session(4, 2, 1.0, library=library).run(None, feeds)


def test_bad_attributes_and_head_dims_are_named(library: Path) -> None:
    case = Case(1, 1, 0, 8, 3, 2, 32)
    with pytest.raises(Exception, match=r"num_heads \(3\) must be a positive multiple of kv_num_heads \(2\)"):
        session(3, 2, 1.0, library=library).run(None, case.feeds(np.random.default_rng(0)))
    case = Case(1, 1, 0, 8, 2, 1, 24)
    with pytest.raises(Exception, match="head_dim a multiple of 16"):
        session(2, 1, 1.0, library=library).run(None, case.feeds(np.random.default_rng(0)))


def _resident(positions: int, capacity: int, window: int) -> int:
    """Rows a sliding window cache holds after ``positions`` tokens (edge/build/graphs/fused.py's formula)."""
    step = capacity - window + 1
    return positions if positions <= capacity else positions - step * -(-(positions - capacity) // step)


@pytest.mark.parametrize("isa", [p for p in PATHS if p != "avxvnni"])
@pytest.mark.parametrize(
    ("heads", "kv_heads", "head_dim", "window", "capacity"),
    [(2, 1, 16, 4, 7), (4, 2, 32, 16, 79), (8, 4, 128, 64, 127)],  # the last two: the tiny preset, a bench-like one
)
def test_sliding_window_cache_equals_group_query_attention(
    library: Path, isa: str, heads: int, kv_heads: int, head_dim: int, window: int, capacity: int
) -> None:
    """Prefill chunks and decode steps across many evictions (chunks longer than the cache too), each op on its
    own cache bound in place: the same outputs, and the same resident rows, as onnxruntime's op."""
    rng = np.random.default_rng(window)
    attrs = {"local_window_size": window, "sliding_window_cache": 1}
    ours = session(heads, kv_heads, 1.0, isa=isa, library=library, **attrs)
    gqa = session(heads, kv_heads, 1.0, op="GroupQueryAttention", **attrs)
    empty = Case(1, 1, 0, capacity, heads, kv_heads, head_dim).feeds(rng)
    runs = [(s, *_bound(s, empty)) for s in (ours, gqa)]
    total = 0
    for seq in [3, 1, 1, 1, 1, 1, 1, 1, 5, 1, 1, 9, *[1] * 70, 40, 1, 200, *[1] * 9, capacity, 1]:
        feeds = Case(1, seq, total, capacity, heads, kv_heads, head_dim).feeds(rng)
        total += seq
        outs = []
        for sess, binding, *_ in runs:
            for name in ("query", "key", "value", "seqlens_k", "total_sequence_length"):
                binding.bind_cpu_input(name, feeds[name])
            binding.bind_output("output")
            sess.run_with_iobinding(binding)
            outs.append(binding.get_outputs()[2].numpy())  # bound after the cache's two
            assert outs[-1].shape == (1, seq, heads * head_dim)
        np.testing.assert_allclose(outs[0], outs[1], rtol=0, atol=5e-5, err_msg=f"after {total} positions")
        rows = _resident(total, capacity, window)
        for i in (3, 4):  # keys, values: the resident rows agree exactly
            np.testing.assert_array_equal(runs[0][i][:, :, :rows], runs[1][i][:, :, :rows], f"after {total}")


@pytest.mark.parametrize("isa", [p for p in PATHS if p != "avxvnni"])
@pytest.mark.parametrize("window", [0, 16])
def test_half_cache_equals_the_fp32_op_on_rounded_values(library: Path, isa: str, window: int) -> None:
    """GroupAttentionF16 bound in place over prefill chunks and decode steps (with a sliding window cache that
    evicts, chunks longer than it too) gives bit for bit GroupAttention's outputs when that op is fed the same
    keys and values rounded to float16: the cache is the only difference, and it holds exactly those values."""
    heads, kv_heads, head_dim, capacity = 4, 2, 32, 79
    attrs: dict[str, int] = {"local_window_size": window, "sliding_window_cache": 1} if window else {}
    rng = np.random.default_rng(window + 1)
    half = session(heads, kv_heads, 1.0, op="GroupAttentionF16", isa=isa, library=library, **attrs)
    full = session(heads, kv_heads, 1.0, isa=isa, library=library, **attrs)
    empty = Case(1, 1, 0, capacity, heads, kv_heads, head_dim).feeds(rng, half=True)
    runs = [(half, *_bound(half, empty)), (full, *_bound(full, {k: v.astype(np.float32) for k, v in empty.items()}))]
    total = 0
    chunks = [3, 1, 1, 9, *[1] * 30, 40, 1, 100, 1] if window else [3, 1, 1, 9, *[1] * 30, 30, 1]
    for seq in chunks:
        feeds = Case(1, seq, total, capacity, heads, kv_heads, head_dim).feeds(rng)
        rounded = {**feeds, "key": feeds["key"].astype(np.float16), "value": feeds["value"].astype(np.float16)}
        total += seq
        outs = []
        for (sess, binding, *_), step in zip(runs, (feeds, rounded), strict=True):
            for name in ("query", "key", "value", "seqlens_k", "total_sequence_length"):
                binding.bind_cpu_input(name, step[name].astype(feeds[name].dtype))
            binding.bind_output("output")
            sess.run_with_iobinding(binding)
            outs.append(binding.get_outputs()[2].numpy())
        np.testing.assert_array_equal(outs[0], outs[1], f"after {total} positions")
        for i in (3, 4):
            np.testing.assert_array_equal(runs[0][i].astype(np.float32), runs[1][i], f"after {total} positions")
