// The int8 GEMV kernel for AVX2 (int8.h), which AVX-VNNI and AVX-512 parts run too: at M = 1 the weight bytes
// bound it. One column per pass, so a thread's weights are one sequential stream (prefetched as the int4
// kernels do); a block is one ymm. The bytes become signed by flipping the top bit (byte - 128, exact), and
// vpmaddubsw multiplies |w| by a with w's sign moved onto it: pair sums at most 2 · 128 · 127 = 32512, so no
// int16 saturation; vpmaddwd with ones sums them to int32, exact. Then in fp32 per block: acc += (sw · sa) · dot,
// two accumulators per row so consecutive blocks do not wait on each other's FMA.
#pragma GCC target("avx2,fma")
#include <immintrin.h>

#include "int8.h"

namespace edge_kernels {
namespace {

template <int MR>
inline void block(const A8Rows& a, size_t m0, const Int8Weights& w, size_t n, size_t b, __m256* acc) {
  const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w.q + (n * w.nb + b) * kBlock));
  const __m256i ws = _mm256_xor_si256(raw, _mm256_set1_epi8(static_cast<char>(0x80)));  // byte - 128
  const __m256i mag = _mm256_abs_epi8(ws);  // -128 becomes 0x80: 128 as the unsigned operand
  const float sw = w.s[n * w.nb + b];
  for (int i = 0; i < MR; ++i) {
    const size_t at = (m0 + i) * a.nb + b;
    const __m256i x = _mm256_load_si256(reinterpret_cast<const __m256i*>(a.q + at * kBlock));
    const __m256i pairs = _mm256_maddubs_epi16(mag, _mm256_sign_epi8(x, ws));
    const __m256 dot = _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
    acc[i] = _mm256_fmadd_ps(dot, _mm256_set1_ps(sw * a.scale[at]), acc[i]);
  }
}

inline float hsum(__m256 v) {
  const __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 q = _mm_add_ps(h, _mm_movehl_ps(h, h));
  return _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));
}

template <int MR>
void columns(const A8Rows& a, size_t m0, const Int8Weights& w, size_t n0, size_t n1, float* y, size_t ldy) {
  for (size_t n = n0; n < n1; ++n) {
    __m256 even[MR], odd[MR];
    for (int i = 0; i < MR; ++i) even[i] = odd[i] = _mm256_setzero_ps();
    const char* q = reinterpret_cast<const char*>(w.q + n * w.nb * kBlock);
    size_t b = 0;
    for (; b + 2 <= w.nb; b += 2) {  // a cache line per step: prefetched once
      _mm_prefetch(q + b * kBlock + kStreamAhead, _MM_HINT_T0);
      _mm_prefetch(q + b * kBlock + kStreamFar, _MM_HINT_T1);
      block<MR>(a, m0, w, n, b, even);
      block<MR>(a, m0, w, n, b + 1, odd);
    }
    if (b < w.nb) block<MR>(a, m0, w, n, b, even);
    for (int i = 0; i < MR; ++i) y[(m0 + i) * ldy + n] = hsum(_mm256_add_ps(even[i], odd[i]));
  }
}

}  // namespace

void int8_avx2(const A8Rows& a, size_t m0, size_t rows, const Int8Weights& w, size_t n0, size_t n1, float* y,
               size_t ldy) {
  with_rows(rows, [&](auto mr) { columns<decltype(mr)::value>(a, m0, w, n0, n1, y, ldy); });
}

}  // namespace edge_kernels
