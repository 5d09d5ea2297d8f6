// Prefill (any M): int8 activations × int4 weights widened in registers (the micro-kernel), tiled for the
// cache. A task owns a panel of kPanel weight columns (kPanel × K / 2 bytes: 144 KiB at K = 6144, well inside
// the 1 MiB L2) and a slab of kSlab activation rows, and walks the slab 4 rows at a time over the panel, so
// each weight byte comes from memory once per slab and from L2 after that. Tasks are numbered panel-major,
// so consecutive tasks on one thread share a panel.
#include "matmul.h"

namespace edge_kernels {
namespace {

constexpr size_t kPanel = 48;      // weight columns per task (a multiple of the kernels' column unrolls)
constexpr size_t kSlab = 96;       // activation rows per task (a multiple of kMaxRows)
constexpr size_t kQuantRows = 16;  // activation rows per quantization task

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

struct TileJob {
  const Q8Rows* a;
  const Int4Weights* w;
  float* y;
  TileFn tile;
  size_t slabs;
};

void run_tile(void* data, size_t i) {
  const TileJob& job = *static_cast<const TileJob*>(data);
  const size_t n0 = (i / job.slabs) * kPanel;
  const size_t n1 = n0 + kPanel < job.w->n ? n0 + kPanel : job.w->n;
  const size_t m0 = (i % job.slabs) * kSlab;
  const size_t m1 = m0 + kSlab < job.a->m ? m0 + kSlab : job.a->m;
  job.tile(*job.a, m0, m1 - m0, *job.w, n0, n1, job.y, job.w->n);
}

}  // namespace

void gemm(const float* x, size_t m, const Int4Weights& w, float* y, TileFn tile, const Parallel& parallel) {
  Q8Buffer buf(m, w.nb);
  QuantJob quant{x, w.k, &buf.rows};
  parallel(quantize_chunk, (m + kQuantRows - 1) / kQuantRows, &quant);
  const size_t slabs = (m + kSlab - 1) / kSlab;
  const size_t panels = (w.n + kPanel - 1) / kPanel;
  TileJob job{&buf.rows, &w, y, tile, slabs};
  parallel(run_tile, panels * slabs, &job);
}

}  // namespace edge_kernels
