// Activations to int8 blocks of 32 in the split even/odd layout of int4.h (portable C++; the compiler vectorizes it).
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>

#include "int4.h"

namespace edge_kernels {
namespace {

using F8 = float __attribute__((vector_size(32)));
using I8 = int8_t __attribute__((vector_size(32)));

}  // namespace

Q8Buffer::Q8Buffer(size_t m, size_t nb) {
  size_t nbp = (nb + kGroup - 1) / kGroup * kGroup;
  size_t q_bytes = m * nbp * kBlockBytes;        // one of qe / qo
  size_t lane_bytes = m * nbp * 4 * sizeof(float);  // one of lane_scale / lane_corr
  size_t total = 2 * q_bytes + 2 * lane_bytes;
  mem_ = std::aligned_alloc(64, (total + 63) / 64 * 64);
  if (mem_ == nullptr) throw std::bad_alloc();
  auto* base = static_cast<uint8_t*>(mem_);
  rows.qe = reinterpret_cast<int8_t*>(base);
  rows.qo = reinterpret_cast<int8_t*>(base + q_bytes);
  rows.lane_scale = reinterpret_cast<float*>(base + 2 * q_bytes);
  rows.lane_corr = reinterpret_cast<float*>(base + 2 * q_bytes + lane_bytes);
  rows.m = m;
  rows.nbp = nbp;
}

Q8Buffer::~Q8Buffer() { std::free(mem_); }

// Compiled for AVX-512, AVX2 and baseline x86-64, picked by the loader from CPUID (the same arithmetic on each:
// the results are bit for bit equal, whichever kernel path runs). Measured at M = 288, K = 6144: the baseline
// build (nearbyint is a libm call without SSE4.1) took a fifth of the GEMM's time.
__attribute__((target_clones("avx512f", "avx2", "default")))
void quantize_rows(const float* x, size_t k, size_t r0, size_t r1, const Q8Rows& a) {
  const size_t nb = (k + kBlock - 1) / kBlock;
  for (size_t r = r0; r < r1; ++r) {
    const float* row = x + r * k;
    int8_t* qe = a.qe + r * a.nbp * kBlockBytes;
    int8_t* qo = a.qo + r * a.nbp * kBlockBytes;
    float* ls = a.lane_scale + r * a.nbp * 4;
    float* lc = a.lane_corr + r * a.nbp * 4;
    for (size_t b = 0; b < a.nbp; ++b) {
      // a whole block is read in place; a partial one (the row's last) or a padding block through a zeroed copy
      float tail[kBlock];
      const float* v = row + b * kBlock;
      if (b >= nb || k - b * kBlock < kBlock) {
        const size_t len = b < nb ? k - b * kBlock : 0;
        for (size_t i = 0; i < kBlock; ++i) tail[i] = i < len ? v[i] : 0.0f;
        v = tail;
      }
      // 8 running maxima in a GCC vector, not one chain, which the compiler leaves scalar (max is exact, so
      // the order is free)
      F8 lanes = {};
      for (size_t i = 0; i < kBlock; i += 8) {
        F8 m;
        std::memcpy(&m, v + i, sizeof(m));
        m = m < 0.0f ? -m : m;
        lanes = m > lanes ? m : lanes;
      }
      float amax = 0.0f;
      for (int l = 0; l < 8; ++l) amax = lanes[l] > amax ? lanes[l] : amax;
      const float scale = amax / 127.0f;
      const float inv = scale != 0.0f ? 1.0f / scale : 0.0f;
      I8 q;
      int sum = 0;
      for (size_t i = 0; i < kBlock; ++i) {
        const int c = static_cast<int>(std::nearbyint(v[i] * inv));
        q[i] = static_cast<int8_t>(c);
        sum += c;
      }
      // the even elements, then the odd ones (int4.h): one byte shuffle, not 32 byte extracts
      const I8 split = __builtin_shuffle(q, I8{0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30,
                                               1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31});
      std::memcpy(qe + b * kBlockBytes, &split, kBlockBytes);
      std::memcpy(qo + b * kBlockBytes, reinterpret_cast<const int8_t*>(&split) + kBlockBytes, kBlockBytes);
      const float corr = -8.0f * scale * static_cast<float>(sum) / 4.0f;
      for (size_t l = 0; l < 4; ++l) {
        ls[b * 4 + l] = scale;
        lc[b * 4 + l] = corr;
      }
    }
  }
}

}  // namespace edge_kernels
