// The int8 GEMV driver (int8.h): natural-order int8 activations, then 32-column chunks over the thread pool,
// each one call of the ISA's kernel for up to kMaxRows rows; and the portable kernel.
#include <cmath>
#include <cstdlib>
#include <new>

#include "int8.h"

namespace edge_kernels {
namespace {

constexpr size_t kColumns = 32;  // columns per task: 32 KiB of weights at K = 1024

class A8Buffer {
 public:
  A8Buffer(size_t m, size_t nb) {
    mem_ = std::aligned_alloc(64, (m * nb * (kBlock + sizeof(float)) + 63) / 64 * 64);
    if (mem_ == nullptr) throw std::bad_alloc();
    rows = {static_cast<int8_t*>(mem_), reinterpret_cast<float*>(static_cast<int8_t*>(mem_) + m * nb * kBlock), m,
            nb};
  }
  ~A8Buffer() { std::free(mem_); }
  A8Buffer(const A8Buffer&) = delete;
  A8Buffer& operator=(const A8Buffer&) = delete;
  A8Rows rows;

 private:
  void* mem_;
};

// The int4 kernels' quantization (quantize.cpp), in natural order: the same scales and the same rounding.
__attribute__((target_clones("avx2", "default"))) void quantize(const float* x, size_t k, const A8Rows& a) {
  for (size_t r = 0; r < a.m; ++r) {
    for (size_t b = 0; b < a.nb; ++b) {
      const float* v = x + r * k + b * kBlock;
      const size_t len = k - b * kBlock < kBlock ? k - b * kBlock : kBlock;
      float amax = 0.0f;
      for (size_t i = 0; i < len; ++i) amax = std::fabs(v[i]) > amax ? std::fabs(v[i]) : amax;
      const float scale = amax / 127.0f;
      const float inv = scale != 0.0f ? 1.0f / scale : 0.0f;
      int8_t* q = a.q + (r * a.nb + b) * kBlock;
      for (size_t i = 0; i < kBlock; ++i) q[i] = i < len ? static_cast<int8_t>(std::nearbyint(v[i] * inv)) : 0;
      a.scale[r * a.nb + b] = scale;
    }
  }
}

struct Job {
  const A8Rows* a;
  const Int8Weights* w;
  float* y;
  Int8Fn kernel;
};

void run_chunk(void* data, size_t i) {
  const Job& job = *static_cast<const Job*>(data);
  const size_t n0 = i * kColumns;
  const size_t n1 = n0 + kColumns < job.w->n ? n0 + kColumns : job.w->n;
  for (size_t m0 = 0; m0 < job.a->m; m0 += kMaxRows) {
    const size_t rows = job.a->m - m0 < kMaxRows ? job.a->m - m0 : kMaxRows;
    job.kernel(*job.a, m0, rows, *job.w, n0, n1, job.y, job.w->n);
  }
}

}  // namespace

void int8_scalar(const A8Rows& a, size_t m0, size_t rows, const Int8Weights& w, size_t n0, size_t n1, float* y,
                 size_t ldy) {
  for (size_t i = m0; i < m0 + rows; ++i) {
    for (size_t n = n0; n < n1; ++n) {
      float acc = 0.0f;
      for (size_t b = 0; b < w.nb; ++b) {
        const uint8_t* q = w.q + (n * w.nb + b) * kBlock;
        const int8_t* x = a.q + (i * a.nb + b) * kBlock;
        int32_t dot = 0;
        for (size_t j = 0; j < kBlock; ++j) dot += (static_cast<int32_t>(q[j]) - 128) * x[j];
        acc += w.s[n * w.nb + b] * a.scale[i * a.nb + b] * static_cast<float>(dot);
      }
      y[i * ldy + n] = acc;
    }
  }
}

void gemv8(const float* x, size_t m, const Int8Weights& w, float* y, Int8Fn kernel, const Parallel& parallel) {
  A8Buffer buf(m, w.nb);
  quantize(x, w.k, buf.rows);
  Job job{&buf.rows, &w, y, kernel};
  parallel(run_chunk, (w.n + kColumns - 1) / kColumns, &job);
}

}  // namespace edge_kernels
