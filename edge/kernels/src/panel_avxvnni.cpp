// The AVX-VNNI GEMM (prefill): panel_avx2.h's packed panel, task loop and micro-kernel, with a block's quads
// summed by VEX vpdpbusd on ymm: the AVX-512 VNNI GEMM (panel_avx512vnni.cpp) at half the width.
//
// Per block and column lane, an int32 sum that starts at the zero point's term −8 · Σa (int4.h's zero_term) and
// adds one vpdpbusd per quad (unsigned nibbles × the row's 4 signed activations broadcast, the AVX-512 kernel's
// operand order), so it ends at the exact Σ (nib − 8) · a, with none of the AVX2 kernel's int16 range limits;
// then in fp32: acc += sw · (sa · dot), 3 fp32 operations (cvt, mul, fma) per 8 vpdpbusd. The arithmetic and
// its order per column are the AVX-512 kernel's, so the two paths agree to the last bit. 3 rows × 16 columns:
// 6 int32 + 6 fp32 accumulators, the panel's 2 vectors and a broadcast fill 15 of the 16 ymm registers.
#pragma GCC target("avx2,fma,avxvnni")
#include "panel_avx2.h"

namespace edge_kernels {
namespace {

constexpr int kRows = 3;  // activation rows per micro-kernel

struct Int32Quads {
  static __m256i start(const Q8Rows& a, size_t row, size_t b) {
    return _mm256_set1_epi32(a.zero_term[row * a.nbp + b]);  // the block's sum is then exact in int32
  }

  static __m256i step(__m256i sum, __m256i w, __m256i a) { return _mm256_dpbusd_avx_epi32(sum, w, a); }

  static __m256 scaled(__m256i sum, const Q8Rows& a, size_t row, size_t b) {
    return _mm256_mul_ps(_mm256_cvtepi32_ps(sum), _mm256_set1_ps(a.lane_scale[(row * a.nbp + b) * 4]));
  }
};

}  // namespace

void panel_avxvnni(const Q8Rows& a, size_t m0, size_t rows, const Int4Weights& w, size_t n0, size_t n1, float* y,
                   size_t ldy) {
  panels<Int32Quads, kRows>(a, m0, rows, w, n0, n1, y, ldy);
}

}  // namespace edge_kernels
