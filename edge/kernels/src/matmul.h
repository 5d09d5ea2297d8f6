// The two drivers around the kernels: GEMV for decode (M <= 4), tiled GEMM for prefill.
#pragma once

#include <cstddef>

#include "int4.h"

namespace edge_kernels {

// Runs fn(data, i) for i in [0, total), possibly in parallel (onnxruntime's intra-op thread pool).
struct Parallel {
  void (*run)(const void* self, void (*fn)(void*, size_t), size_t total, void* data);
  const void* self;
  void operator()(void (*fn)(void*, size_t), size_t total, void* data) const { run(self, fn, total, data); }
};

// y[M][N] = x[M][K] · Wᵀ, M <= kMaxRows: activations quantized once, columns split across threads (gemv.cpp).
void gemv(const float* x, size_t m, const Int4Weights& w, float* y, TileFn tile, const Parallel& parallel);

// The same for any M: rows quantized in parallel, then tasks of (column group, row slab), each one call of the
// ISA's panel kernel (gemm.cpp).
void gemm(const float* x, size_t m, const Int4Weights& w, float* y, PanelFn panel, const Parallel& parallel);

}  // namespace edge_kernels
