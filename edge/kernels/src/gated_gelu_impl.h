// The GatedGelu kernel's one source, compiled once per ISA (gated_gelu_avx512.cpp, gated_gelu_avx2.cpp,
// gated_gelu_scalar.cpp set the target and EDGE_VEC_LANES, then include this). Work splits into chunks of
// one row's columns; a call too small to pay for waking the thread pool (a decode step's one row) runs inline.
#pragma once

#include <algorithm>
#include <cstddef>

#include "gated_gelu.h"
#include "vecmath.h"

namespace edge_kernels {
namespace {

constexpr size_t kChunk = 4096;        // columns per work item
constexpr size_t kInline = 64 * 1024;  // outputs below this many: one thread, no pool

inline Vec gelu_gate(Vec g, Vec u) {
  const Vec inner = (g + g * g * g * 0.044715f) * 0.7978845608028654f;  // sqrt(2/π)
  const Vec a = inner < 0.0f ? -inner : inner;
  const Vec t = exp_neg(a * -2.0f);  // tanh|y| = (1 − e^−2|y|) / (1 + e^−2|y|)
  Vec th = (1.0f - t) / (1.0f + t);
  th = inner < 0.0f ? -th : th;
  return g * 0.5f * (1.0f + th) * u;
}

struct Work {
  const GatedArgs* a;
  size_t chunks;  // per row
};

void run_chunk(void* data, size_t item) {
  const Work& w = *static_cast<const Work*>(data);
  const GatedArgs& a = *w.a;
  const size_t r = item / w.chunks, c0 = (item % w.chunks) * kChunk, c1 = std::min(a.half, c0 + kChunk);
  const float* gate = a.x + r * 2 * a.half;
  const float* up = gate + a.half;
  float* out = a.out + r * a.half;
  size_t j = c0;
  for (; j + kLanes <= c1; j += kLanes) {
    Vec g, u;
    __builtin_memcpy(&g, gate + j, sizeof g);
    __builtin_memcpy(&u, up + j, sizeof u);
    const Vec y = gelu_gate(g, u);
    __builtin_memcpy(out + j, &y, sizeof y);
  }
  if (j < c1) {  // the tail through one padded vector: every column gets the same arithmetic
    Vec g = {}, u = {};
    __builtin_memcpy(&g, gate + j, (c1 - j) * sizeof(float));
    __builtin_memcpy(&u, up + j, (c1 - j) * sizeof(float));
    const Vec y = gelu_gate(g, u);
    __builtin_memcpy(out + j, &y, (c1 - j) * sizeof(float));
  }
}

void gated_gelu(const GatedArgs& a, const Parallel& parallel) {
  if (a.rows == 0 || a.half == 0) return;
  Work w{&a, (a.half + kChunk - 1) / kChunk};
  const size_t items = a.rows * w.chunks;
  if (a.rows * a.half < kInline) {
    for (size_t i = 0; i < items; ++i) run_chunk(&w, i);
    return;
  }
  parallel(run_chunk, items, &w);
}

}  // namespace
}  // namespace edge_kernels
