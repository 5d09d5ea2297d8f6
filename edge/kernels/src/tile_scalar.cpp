// The portable micro-kernel: plain loops, any x86-64 (or other) CPU. Also the reading of int4.h's arithmetic.
#include "int4.h"

namespace edge_kernels {

void tile_scalar(const Q8Rows& a, size_t m0, size_t rows, const Int4Weights& w, size_t n0, size_t n1, float* y,
                 size_t ldy) {
  for (size_t i = 0; i < rows; ++i) {
    const size_t r = m0 + i;
    const int8_t* qe = a.qe + r * a.nbp * kBlockBytes;
    const int8_t* qo = a.qo + r * a.nbp * kBlockBytes;
    const float* ls = a.lane_scale + r * a.nbp * 4;
    const float* lc = a.lane_corr + r * a.nbp * 4;
    for (size_t n = n0; n < n1; ++n) {
      const uint8_t* q = w.q + n * w.nb * kBlockBytes;
      const float* s = w.s + n * w.nb;
      float acc = 0.0f;
      for (size_t b = 0; b < w.nb; ++b) {
        int32_t dot = 0;
        for (size_t j = 0; j < kBlockBytes; ++j) {
          const uint8_t byte = q[b * kBlockBytes + j];
          dot += static_cast<int32_t>(byte & 0x0F) * qe[b * kBlockBytes + j];
          dot += static_cast<int32_t>(byte >> 4) * qo[b * kBlockBytes + j];
        }
        acc += s[b] * (ls[b * 4] * static_cast<float>(dot) + 4.0f * lc[b * 4]);
      }
      y[r * ldy + n] = acc;
    }
  }
}

}  // namespace edge_kernels
