// The AVX2 GEMM (prefill): panel_avx2.h's packed panel, task loop and micro-kernel, with a block's quads summed
// in int16.
//
// Per quad, vpmaddubsw (unsigned nibbles × the row's 4 signed activations broadcast) gives each column two int16
// pair sums (at most 2 × 15 × 128 = 3840), which are added in int16 over the block's 8 quads (at most 30720: no
// overflow); per block one vpmaddwd with ones to int32, then in fp32 per column lane: acc += sw · (sa · dot −
// 8 · sa · Σa). AVX-VNNI parts run panel_avxvnni.cpp instead, where one vpdpbusd replaces the multiply and the
// add. Measured at M = 288 on one core, in-process A/B: 3 rows × 16 columns 3–5% faster than 4 × 16 or 2 × 16
// (with 16 ymm registers, the fp32 accumulators are the limit).
#pragma GCC target("avx2,fma")
#include "panel_avx2.h"

namespace edge_kernels {
namespace {

constexpr int kRows = 3;  // activation rows per micro-kernel: 6 int16 + 6 fp32 accumulators

struct Int16Quads {
  static __m256i start(const Q8Rows&, size_t, size_t) { return _mm256_setzero_si256(); }

  static __m256i step(__m256i sum, __m256i w, __m256i a) {
    sum = _mm256_add_epi16(sum, _mm256_maddubs_epi16(w, a));
    // keep the adds in order: GCC otherwise reassociates the 8 integer adds into a tree that holds every product
    // at once, and spills
    __asm__("" : "+x"(sum));
    return sum;
  }

  static __m256 scaled(__m256i sum, const Q8Rows& a, size_t row, size_t b) {
    const size_t lane = (row * a.nbp + b) * 4;
    const __m256 sa = _mm256_set1_ps(a.lane_scale[lane]);
    const __m256 ca = _mm256_set1_ps(4.0f * a.lane_corr[lane]);  // lane_corr: a quarter of -8 · sa · Σa
    const __m256 dot = _mm256_cvtepi32_ps(_mm256_madd_epi16(sum, _mm256_set1_epi16(1)));
    return _mm256_fmadd_ps(dot, sa, ca);
  }
};

}  // namespace

void panel_avx2(const Q8Rows& a, size_t m0, size_t rows, const Int4Weights& w, size_t n0, size_t n1, float* y,
                size_t ldy) {
  panels<Int16Quads, kRows>(a, m0, rows, w, n0, n1, y, ldy);
}

}  // namespace edge_kernels
