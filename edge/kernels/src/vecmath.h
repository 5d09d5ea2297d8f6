// The vectors and vector math of the kernels compiled once per ISA (attend.h, gated_gelu_impl.h): GCC vector
// extensions as wide as the includer's registers. The including .cpp sets EDGE_VEC_LANES to that width in
// floats: 16 (zmm), 8 (ymm) or 4 (xmm). Wider generic vectors than the target has are lowered piecewise through
// the stack: on AVX2, 16-float vectors made the attention kernel 3-6× slower (its accumulators spilled and
// moved through general registers).
#pragma once
// Vec values pass between inline functions of one file only, never across an ABI boundary
#pragma GCC diagnostic ignored "-Wpsabi"

#include <cstddef>

namespace edge_kernels {
namespace {

constexpr size_t kLanes = EDGE_VEC_LANES;
static_assert(kLanes == 4 || kLanes == 8 || kLanes == 16, "EDGE_VEC_LANES: 4, 8 or 16");
typedef float Vec __attribute__((vector_size(4 * kLanes)));
typedef int IVec __attribute__((vector_size(4 * kLanes)));

// exp(x) for x <= 0: 2^(x log2 e) split into 2^n · 2^f, |f| <= 1/2, 2^f by its degree-6 Taylor polynomial
// (relative error about 1e-7); below -87 it returns about 1.6e-38 instead of underflowing
inline Vec exp_neg(Vec x) {
  const Vec lo = x - x - 87.0f;
  x = x < lo ? lo : x;
  const Vec y = x * 1.44269504088896341f;
  const Vec n = (y + 12582912.0f) - 12582912.0f;  // round to nearest (1.5 · 2^23)
  const Vec f = y - n;
  Vec p = f * 1.5403530393381609e-4f + 1.3333558146428443e-3f;
  p = p * f + 9.6181291076284772e-3f;
  p = p * f + 5.5504108664821580e-2f;
  p = p * f + 2.4022650695910071e-1f;
  p = p * f + 6.9314718055994531e-1f;
  p = p * f + 1.0f;
  const IVec bits = (__builtin_convertvector(n, IVec) + 127) << 23;
  return p * (Vec)bits;  // same-size vector cast: the bits as floats, 2^n
}

}  // namespace
}  // namespace edge_kernels
