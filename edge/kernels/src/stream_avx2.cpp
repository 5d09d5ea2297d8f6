// The AVX2 GEMV micro-kernel (decode; Haswell and later Core, Atom since Gracemont, Zen): stream_avx2.h's column
// loop, a step's lanes summed with vpmaddubsw (unsigned nibbles × signed int8 pairs to int16: at most
// 2 × 15 × 128, no saturation) then vpmaddwd with ones to int32. AVX-VNNI parts run stream_avxvnni.cpp instead.
// The prefill GEMM is panel_avx2.cpp.
#pragma GCC target("avx2,fma")
#include "stream_avx2.h"

namespace edge_kernels {
namespace {

struct MaddPairs {
  static __m256i lanes(__m256i lo, __m256i hi, __m256i ae, __m256i ao) {
    const __m256i pairs = _mm256_add_epi16(_mm256_maddubs_epi16(lo, ae), _mm256_maddubs_epi16(hi, ao));
    return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
  }
};

}  // namespace

void stream_avx2(const Q8Rows& a, size_t m0, size_t rows, const Int4Weights& w, size_t n0, size_t n1, float* y,
                 size_t ldy) {
  stream<MaddPairs>(a, m0, rows, w, n0, n1, y, ldy);
}

}  // namespace edge_kernels
