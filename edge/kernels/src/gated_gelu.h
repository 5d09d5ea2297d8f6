// GeGLU's activation, fused: out = gelu_tanh(gate) · up over a gate/up matmul's output [rows][2 · half]
// (gate the first half of each row, up the second), the core of edge.kernels::GatedGelu (gated_gelu_op.cpp).
// It replaces the fused decoder's Split → Gelu(approximate="tanh") → Mul: one pass that reads the row once and
// writes half of it, where the three nodes copy both halves, then read and write each again.
#pragma once

#include <cstddef>

#include "matmul.h"

namespace edge_kernels {

struct GatedArgs {
  const float* x;  // [rows][2 · half]
  float* out;      // [rows][half]
  size_t rows, half;
};

// gelu_tanh(g) = g/2 · (1 + tanh(sqrt(2/π) · (g + 0.044715 g³))), onnx Gelu's approximate="tanh" (and
// transformers' gelu_pytorch_tanh), with tanh from a degree-6 exp (relative error about 1e-7). Each path is
// the same source (gated_gelu_impl.h) compiled for its ISA.
using GatedFn = void (*)(const GatedArgs&, const Parallel&);
void gated_gelu_avx512(const GatedArgs& a, const Parallel& parallel);
void gated_gelu_avx2(const GatedArgs& a, const Parallel& parallel);
void gated_gelu_scalar(const GatedArgs& a, const Parallel& parallel);

}  // namespace edge_kernels
