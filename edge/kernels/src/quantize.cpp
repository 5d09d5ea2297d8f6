// Activations to int8 blocks of 32 in the split even/odd layout of int4.h (portable C++; the compiler vectorizes it).
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>

#include "int4.h"

namespace edge_kernels {

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

void quantize_rows(const float* x, size_t k, size_t r0, size_t r1, const Q8Rows& a) {
  const size_t nb = (k + kBlock - 1) / kBlock;
  for (size_t r = r0; r < r1; ++r) {
    const float* row = x + r * k;
    int8_t* qe = a.qe + r * a.nbp * kBlockBytes;
    int8_t* qo = a.qo + r * a.nbp * kBlockBytes;
    float* ls = a.lane_scale + r * a.nbp * 4;
    float* lc = a.lane_corr + r * a.nbp * 4;
    for (size_t b = 0; b < a.nbp; ++b) {
      float v[kBlock] = {};
      if (b < nb) {
        size_t len = k - b * kBlock < kBlock ? k - b * kBlock : kBlock;
        std::memcpy(v, row + b * kBlock, len * sizeof(float));
      }
      float amax = 0.0f;
      for (size_t i = 0; i < kBlock; ++i) amax = std::fmax(amax, std::fabs(v[i]));
      const float scale = amax / 127.0f;
      const float inv = scale != 0.0f ? 1.0f / scale : 0.0f;
      int sum = 0;
      for (size_t j = 0; j < kBlockBytes; ++j) {
        int e = static_cast<int>(std::nearbyint(v[2 * j] * inv));
        int o = static_cast<int>(std::nearbyint(v[2 * j + 1] * inv));
        qe[b * kBlockBytes + j] = static_cast<int8_t>(e);
        qo[b * kBlockBytes + j] = static_cast<int8_t>(o);
        sum += e + o;
      }
      const float corr = -8.0f * scale * static_cast<float>(sum) / 4.0f;
      for (size_t l = 0; l < 4; ++l) {
        ls[b * 4 + l] = scale;
        lc[b * 4 + l] = corr;
      }
    }
  }
}

}  // namespace edge_kernels
