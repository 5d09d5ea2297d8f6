// Prefill (any M): int8 activations × int4 weights, tiled for the cache. Rows are quantized in parallel, then
// a task owns a group of kGroupColumns weight columns and a slab of kSlab activation rows and is one call of the
// ISA's panel kernel, which widens the group's weights a K chunk at a time into a small buffer and passes the
// whole slab over it (panel_avx512vnni.cpp). Tasks are numbered group-major, so consecutive tasks on one
// thread read the same weights (from L2 after the first).
#include "matmul.h"

namespace edge_kernels {
namespace {

// Measured at M = 288 (Sapphire Rapids, in-process A/B): 96-column tasks against 192-column ones, 1.3–1.5×
// faster on 2 threads at 1024 × 1536 (3 runs; 48 tasks instead of 24) and within ±5% on the other shapes and
// on one core; slabs of 144 or 288 rows (fewer repacks of the same weights) within ±5% of 96, either way.
constexpr size_t kGroupColumns = 96;   // weight columns per task (a multiple of the panel kernels' 48 and 16)
constexpr size_t kSlab = 96;           // activation rows per task
constexpr size_t kQuantRows = 16;      // activation rows per quantization task

struct QuantJob {
  const float* x;
  size_t k;
  const Q8Rows* a;
};

void quantize_chunk(void* data, size_t i) {
  const QuantJob& job = *static_cast<const QuantJob*>(data);
  const size_t r0 = i * kQuantRows;
  const size_t r1 = r0 + kQuantRows < job.a->m ? r0 + kQuantRows : job.a->m;
  quantize_rows(job.x, job.k, r0, r1, *job.a);
}

struct PanelJob {
  const Q8Rows* a;
  const Int4Weights* w;
  float* y;
  PanelFn panel;
  size_t slabs;
};

void run_panel(void* data, size_t i) {
  const PanelJob& job = *static_cast<const PanelJob*>(data);
  const size_t n0 = (i / job.slabs) * kGroupColumns;
  const size_t n1 = n0 + kGroupColumns < job.w->n ? n0 + kGroupColumns : job.w->n;
  const size_t m0 = (i % job.slabs) * kSlab;
  const size_t m1 = m0 + kSlab < job.a->m ? m0 + kSlab : job.a->m;
  job.panel(*job.a, m0, m1 - m0, *job.w, n0, n1, job.y, job.w->n);
}

}  // namespace

void gemm(const float* x, size_t m, const Int4Weights& w, float* y, PanelFn panel, const Parallel& parallel) {
  Q8Buffer buf(m, w.nb);
  QuantJob quant{x, w.k, &buf.rows};
  parallel(quantize_chunk, (m + kQuantRows - 1) / kQuantRows, &quant);
  const size_t slabs = (m + kSlab - 1) / kSlab;
  const size_t groups = (w.n + kGroupColumns - 1) / kGroupColumns;
  PanelJob job{&buf.rows, &w, y, panel, slabs};
  parallel(run_panel, groups * slabs, &job);
}

}  // namespace edge_kernels
