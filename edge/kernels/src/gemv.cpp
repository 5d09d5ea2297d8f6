// Decode (M = 1..4): stream every weight byte once. Columns go to threads in chunks of kColumns; each chunk
// is one call of the ISA's stream micro-kernel covering all the rows, so a weight block is loaded once for
// every row, and a chunk's weights (kColumns × K / 2 contiguous bytes) and scales are read in order.
#include "matmul.h"

namespace edge_kernels {
namespace {

constexpr size_t kColumns = 48;  // 2, 4 and 8 chunks per thread measured no better (and balance worse under load)

struct Job {
  const Q8Rows* a;
  const Int4Weights* w;
  float* y;
  TileFn tile;
};

void run_chunk(void* data, size_t i) {
  const Job& job = *static_cast<const Job*>(data);
  const size_t n0 = i * kColumns;
  const size_t n1 = n0 + kColumns < job.w->n ? n0 + kColumns : job.w->n;
  job.tile(*job.a, 0, job.a->m, *job.w, n0, n1, job.y, job.w->n);
}

}  // namespace

void gemv(const float* x, size_t m, const Int4Weights& w, float* y, TileFn tile, const Parallel& parallel) {
  Q8Buffer buf(m, w.nb);
  quantize_rows(x, w.k, 0, m, buf.rows);
  Job job{&buf.rows, &w, y, tile};
  parallel(run_chunk, (w.n + kColumns - 1) / kColumns, &job);
}

}  // namespace edge_kernels
