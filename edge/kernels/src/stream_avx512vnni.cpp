// The AVX-512 VNNI GEMV micro-kernel (decode): 4 blocks (64 packed bytes) of a weight column per step, widened
// to two 64-byte nibble vectors in registers and multiplied with vpdpbusd (unsigned nibbles × signed int8
// activations), 4 int32 lanes per block, scaled in fp32 per block. Each weight load serves every activation
// row (1..4). The prefill GEMM is panel_avx512vnni.cpp.
// Pattern: llama.cpp's Q4_0 × Q8_0 dot product (ggml-cpu/arch/x86/quants.c), on MatMulNBits' byte order.
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,fma")
// GCC 12's own intrinsics (permutexvar, reduce_add) read intentionally undefined registers: not ours to fix
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include "int4.h"

namespace edge_kernels {
namespace {

template <int MR, int NR>
inline void columns(const Q8Rows& a, size_t m0, const Int4Weights& w, size_t n, float* y, size_t ldy,
                    size_t ahead, size_t far) {
  const __m512i low = _mm512_set1_epi8(0x0F);
  const __m512i spread = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
  // every activation array is addressed by the same byte offset (16 bytes per block: 16 int8, or 4 floats),
  // so one offset per row serves qe, qo, lane_scale and lane_corr
  const size_t row_bytes = a.nbp * kBlockBytes;
  const char* qe = reinterpret_cast<const char*>(a.qe) + m0 * row_bytes;
  const char* qo = reinterpret_cast<const char*>(a.qo) + m0 * row_bytes;
  const char* ls = reinterpret_cast<const char*>(a.lane_scale) + m0 * row_bytes;
  const char* lc = reinterpret_cast<const char*>(a.lane_corr) + m0 * row_bytes;
  const uint8_t* q[NR];
  const float* s[NR];
  for (int r = 0; r < NR; ++r) {
    q[r] = w.q + (n + r) * w.nb * kBlockBytes;
    s[r] = w.s + (n + r) * w.nb;
  }
  __m512 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int r = 0; r < NR; ++r) acc[i][r] = _mm512_setzero_ps();
  // one group of 4 blocks at block b; the last group of a column may hold fewer (left < 4): masked loads, never
  // past the tensor's end (plain loads otherwise: measured 11% faster at prefill)
  auto group = [&](auto full, size_t b, size_t left) {
    const __mmask64 qmask = full ? ~__mmask64{0} : (__mmask64{1} << (left * kBlockBytes)) - 1;
    const __mmask16 smask = full ? __mmask16{0xF} : static_cast<__mmask16>((1u << left) - 1);
    __m512i lo[NR], hi[NR];
    __m512 ws[NR];
    for (int r = 0; r < NR; ++r) {
      const uint8_t* qb = q[r] + b * kBlockBytes;
      const __m512i v = full ? _mm512_loadu_si512(qb) : _mm512_maskz_loadu_epi8(qmask, qb);
      // kStreamAhead bytes on in the one sequential stream, and `far` bytes on into L2
      _mm_prefetch(reinterpret_cast<const char*>(qb + ahead), _MM_HINT_T0);
      if (far != 0) _mm_prefetch(reinterpret_cast<const char*>(qb + far), _MM_HINT_T1);
      lo[r] = _mm512_and_si512(v, low);
      hi[r] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
      const __m512 s4 = full ? _mm512_castps128_ps512(_mm_loadu_ps(s[r] + b)) : _mm512_maskz_loadu_ps(smask, s[r] + b);
      ws[r] = _mm512_permutexvar_ps(spread, s4);
    }
    const size_t off = b * kBlockBytes;
    for (int i = 0; i < MR; ++i) {
      const size_t at = i * row_bytes + off;
      const __m512i ae = _mm512_load_si512(qe + at);
      const __m512i ao = _mm512_load_si512(qo + at);
      const __m512 sa = _mm512_load_ps(reinterpret_cast<const float*>(ls + at));
      const __m512 ca = _mm512_load_ps(reinterpret_cast<const float*>(lc + at));
      for (int r = 0; r < NR; ++r) {
        __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo[r], ae);
        dot = _mm512_dpbusd_epi32(dot, hi[r], ao);
        const __m512 block = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), sa, ca);
        acc[i][r] = _mm512_fmadd_ps(ws[r], block, acc[i][r]);
      }
    }
  };
  size_t b = 0;
  for (; b + kGroup <= w.nb; b += kGroup) group(std::true_type{}, b, kGroup);
  if (b < w.nb) group(std::false_type{}, b, w.nb - b);
  for (int i = 0; i < MR; ++i)
    for (int r = 0; r < NR; ++r) y[(m0 + i) * ldy + n + r] = _mm512_reduce_add_ps(acc[i][r]);
}

}  // namespace

void stream_avx512vnni(const Q8Rows& a, size_t m0, size_t rows, const Int4Weights& w, size_t n0, size_t n1,
                       float* y, size_t ldy) {
  with_rows(rows, [&](auto mr) {
    constexpr int MR = decltype(mr)::value;
    for (size_t n = n0; n < n1; ++n) columns<MR, 1>(a, m0, w, n, y, ldy, kStreamAhead, kStreamFar);
  });
}

}  // namespace edge_kernels
