// Vector math the kernels compiled per ISA share (attend.h, gated_gelu_impl.h): GCC vector extensions of any
// width, instantiated with the includer's float vector V and the int vector I of the same size.
#pragma once
// Vec values pass between inline functions of one file only, never across an ABI boundary
#pragma GCC diagnostic ignored "-Wpsabi"

namespace edge_kernels {
namespace {

// exp(x) for x <= 0: 2^(x log2 e) split into 2^n · 2^f, |f| <= 1/2, 2^f by its degree-6 Taylor polynomial
// (relative error about 1e-7); below -87 it returns about 1.6e-38 instead of underflowing
template <typename V, typename I>
inline V exp_neg(V x) {
  const V lo = x - x - 87.0f;
  x = x < lo ? lo : x;
  const V y = x * 1.44269504088896341f;
  const V n = (y + 12582912.0f) - 12582912.0f;  // round to nearest (1.5 · 2^23)
  const V f = y - n;
  V p = f * 1.5403530393381609e-4f + 1.3333558146428443e-3f;
  p = p * f + 9.6181291076284772e-3f;
  p = p * f + 5.5504108664821580e-2f;
  p = p * f + 2.4022650695910071e-1f;
  p = p * f + 6.9314718055994531e-1f;
  p = p * f + 1.0f;
  const I bits = (__builtin_convertvector(n, I) + 127) << 23;
  return p * (V)bits;  // same-size vector cast: the bits as floats, 2^n
}

}  // namespace
}  // namespace edge_kernels
