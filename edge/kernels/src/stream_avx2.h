// The GEMV column loop of the two 256-bit paths, AVX2 (stream_avx2.cpp) and AVX-VNNI (stream_avxvnni.cpp): 2
// blocks (32 packed bytes) of a weight column per step, nibbles widened in registers, 4 int32 lanes per block
// as in the AVX-512 kernel, scaled in fp32 per block. The paths differ only in how a step's int32 lanes are
// summed (Dot::lanes). Include it after the file's #pragma GCC target: it compiles under the includer's ISA.
#pragma once

#include <immintrin.h>

#include "int4.h"

namespace edge_kernels {
namespace {

constexpr size_t kPair = 2;  // blocks per 32-byte step

// Dot::lanes(lo, hi, ae, ao): per 4-lane block, each int32 lane the sum of its 8 products lo · ae + hi · ao
// (lo, hi: unsigned nibbles 0..15; ae, ao: the block's even and odd int8 activations).
template <typename Dot, int MR, int NR>
inline void columns(const Q8Rows& a, size_t m0, const Int4Weights& w, size_t n, float* y, size_t ldy,
                    size_t ahead, size_t far) {
  const __m256i low = _mm256_set1_epi8(0x0F);
  const __m256i spread = _mm256_set_epi32(1, 1, 1, 1, 0, 0, 0, 0);
  const size_t row_q = a.nbp * kBlockBytes;
  const size_t row_l = a.nbp * 4;
  __m256 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int r = 0; r < NR; ++r) acc[i][r] = _mm256_setzero_ps();
  for (size_t b = 0; b < w.nb; b += kPair) {
    const bool pair = w.nb - b >= kPair;  // an odd block count ends with one block: 16-byte loads
    __m256i lo[NR], hi[NR];
    __m256 ws[NR];
    for (int r = 0; r < NR; ++r) {
      const uint8_t* q = w.q + ((n + r) * w.nb + b) * kBlockBytes;
      const float* s = w.s + (n + r) * w.nb + b;
      const __m256i v = pair ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q))
                             : _mm256_zextsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q)));
      // as in the AVX-512 kernel: kStreamAhead bytes on, and `far` bytes on into L2
      _mm_prefetch(reinterpret_cast<const char*>(q + ahead), _MM_HINT_T0);
      if (far != 0) _mm_prefetch(reinterpret_cast<const char*>(q + far), _MM_HINT_T1);
      lo[r] = _mm256_and_si256(v, low);
      hi[r] = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
      const __m128 s2 = pair ? _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(s))) : _mm_load_ss(s);
      ws[r] = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(s2), spread);
    }
    for (int i = 0; i < MR; ++i) {
      const size_t row = m0 + i;
      const __m256i ae = _mm256_load_si256(reinterpret_cast<const __m256i*>(a.qe + row * row_q + b * kBlockBytes));
      const __m256i ao = _mm256_load_si256(reinterpret_cast<const __m256i*>(a.qo + row * row_q + b * kBlockBytes));
      const __m256 ls = _mm256_load_ps(a.lane_scale + row * row_l + b * 4);
      const __m256 lc = _mm256_load_ps(a.lane_corr + row * row_l + b * 4);
      for (int r = 0; r < NR; ++r) {
        const __m256 block = _mm256_fmadd_ps(_mm256_cvtepi32_ps(Dot::lanes(lo[r], hi[r], ae, ao)), ls, lc);
        acc[i][r] = _mm256_fmadd_ps(ws[r], block, acc[i][r]);
      }
    }
  }
  for (int i = 0; i < MR; ++i) {
    for (int r = 0; r < NR; ++r) {
      const __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc[i][r]), _mm256_extractf128_ps(acc[i][r], 1));
      const __m128 q = _mm_add_ps(h, _mm_movehl_ps(h, h));
      y[(m0 + i) * ldy + n + r] = _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));
    }
  }
}

// The stream micro-kernel (int4.h's TileFn) on Dot: one column per pass, every row served by each weight load.
template <typename Dot>
inline void stream(const Q8Rows& a, size_t m0, size_t rows, const Int4Weights& w, size_t n0, size_t n1, float* y,
                   size_t ldy) {
  with_rows(rows, [&](auto mr) {
    constexpr int MR = decltype(mr)::value;
    for (size_t n = n0; n < n1; ++n) columns<Dot, MR, 1>(a, m0, w, n, y, ldy, kStreamAhead, kStreamFar);
  });
}

}  // namespace
}  // namespace edge_kernels
