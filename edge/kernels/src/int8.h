// The int8 weight matmul (edge.kernels::MatMulInt8, int8_op.cpp): MatMulNBits' 8-bit bytes as stored, for the
// decoder's LM head, a GEMV read once per decode step.
//
// Weights (com.microsoft MatMulNBits, bits 8, block 32, symmetric, no zero points): for output column n and
// block b, 32 bytes at q[(n * nb + b) * 32], byte i the element 32b + i, unsigned 0..255 with an implicit zero
// point of 128; one fp32 scale at s[n * nb + b]. W[n, k] = (byte - 128) * scale. Bytes past K in the last
// block meet activations that are zero.
//
// Activations are quantized per block of 32 to int8 as for the int4 kernels (scale = max|x| / 127, rounded to
// nearest even, as MatMulNBits' accuracy level 4 does), but kept in their natural order, which is the weights'.
// Per block: y += sw · sa · Σ (byte - 128) · a, the sum exact in int32.
#pragma once

#include <cstddef>
#include <cstdint>

#include "matmul.h"

namespace edge_kernels {

struct Int8Weights {
  const uint8_t* q;  // [N][nb][32]
  const float* s;    // [N][nb]
  size_t n;          // output columns (N)
  size_t k;          // input features (K)
  size_t nb;         // blocks per column: ceil(K / 32)
};

struct A8Rows {
  int8_t* q;     // [M][nb][32], zero past K
  float* scale;  // [M][nb]
  size_t m;
  size_t nb;
};

// A GEMV kernel: y[(m0 + i) * ldy + j] = Σ_k a[m0 + i, k] · W[j, k] for i < rows (1..kMaxRows), j in [n0, n1).
using Int8Fn = void (*)(const A8Rows& a, size_t m0, size_t rows, const Int8Weights& w, size_t n0, size_t n1,
                        float* y, size_t ldy);
void int8_avx2(const A8Rows&, size_t, size_t, const Int8Weights&, size_t, size_t, float*, size_t);
void int8_scalar(const A8Rows&, size_t, size_t, const Int8Weights&, size_t, size_t, float*, size_t);

// y[M][N] = x[M][K] · Wᵀ (gemv8.cpp): activations quantized once, columns split across threads, rows kMaxRows
// at a time. Any M is correct; the weights are read once per kMaxRows rows, so it is meant for decode.
void gemv8(const float* x, size_t m, const Int8Weights& w, float* y, Int8Fn kernel, const Parallel& parallel);

}  // namespace edge_kernels
