// Grouped-query attention over a KV cache the runtime owns: the core of edge.kernels::GroupAttention
// (attention_op.cpp), for the decoder's full-attention and sliding-window layers.
//
// onnxruntime's CPU GroupQueryAttention reads a decode step's KV cache at about 2.4 GB/s (one node, 8 heads on
// 1 KV head × 256, context 4096: 3.5 ms where the machine reads 35 GB/s), and it was 45% of a decode step at
// context 4096 on the bench preset (per-node profile). This kernel reads each cached K and V row once per
// KV head for all the query heads that share it, keeps the softmax online (flash-decoding), and splits a
// decode step's context across threads, merging the partial softmaxes at the end.
#pragma once

#include <cstddef>

#include "matmul.h"

namespace edge_kernels {

struct AttentionArgs {
  const float* q;  // [seq][heads][head_dim]: one batch row of the op's query input
  const void* k;  // [kv_heads][capacity][head_dim] of float (or binary16 with half): rows [0, past + seq) hold
                   // keys (this call's already written)
  const void* v;   // the same layout, values
  float* out;      // [seq][heads][head_dim]
  size_t seq, past, capacity, heads, kv_heads, head_dim;
  float scale;    // on q·k before the softmax
  size_t window;  // 0: none; else query s attends to at most this many rows, itself included
  // Image blocks (both set, or neither): query s attends to rows [starts[s], ends[s]) instead, which the op
  // derives from the call's token types (a block's queries see the whole block, both ways); otherwise causal
  const size_t* starts = nullptr;
  const size_t* ends = nullptr;
  bool half = false;  // k and v hold binary16 values (uint16_t bits), else float
};

// Causal: query s attends to rows [0, past + s], or with a window to rows [past + s + 1 − window, past + s];
// with starts and ends, to rows [starts[s], ends[s]).
// Each path is the same source (attend.h) compiled for its ISA.
using AttendFn = void (*)(const AttentionArgs&, const Parallel&);
void attend_avx512(const AttentionArgs& a, const Parallel& parallel);
void attend_avx2(const AttentionArgs& a, const Parallel& parallel);
void attend_scalar(const AttentionArgs& a, const Parallel& parallel);

// to[i] = binary16(from[i]), rounded to nearest even (the same bits on every path): a call's new keys and values
// into an fp16 cache.
using NarrowFn = void (*)(const float* from, uint16_t* to, size_t n);
void narrow_avx512(const float* from, uint16_t* to, size_t n);
void narrow_avx2(const float* from, uint16_t* to, size_t n);
void narrow_scalar(const float* from, uint16_t* to, size_t n);

}  // namespace edge_kernels
