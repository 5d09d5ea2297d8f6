// The AVX-VNNI GEMV micro-kernel (decode; Alder Lake and later, P- and E-cores):
// stream_avx2.h's column loop, a step's lanes summed by two VEX vpdpbusd (unsigned nibbles × signed int8
// activations, the operand order of the AVX-512 kernel) instead of AVX2's vpmaddubsw, vpaddw and vpmaddwd.
// Exact either way (the int32 lanes are the same), so this path's results equal the AVX2 path's bit for bit.
// The prefill GEMM is panel_avxvnni.cpp.
#pragma GCC target("avx2,fma,avxvnni")
#include "stream_avx2.h"

namespace edge_kernels {
namespace {

struct Dpbusd {
  static __m256i lanes(__m256i lo, __m256i hi, __m256i ae, __m256i ao) {
    return _mm256_dpbusd_avx_epi32(_mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), lo, ae), hi, ao);
  }
};

}  // namespace

void stream_avxvnni(const Q8Rows& a, size_t m0, size_t rows, const Int4Weights& w, size_t n0, size_t n1,
                    float* y, size_t ldy) {
  stream<Dpbusd>(a, m0, rows, w, n0, n1, y, ldy);
}

}  // namespace edge_kernels
