// The attention kernel's one source, compiled once per ISA (attend_avx512.cpp, attend_avx2.cpp,
// attend_scalar.cpp set the target and include this): GCC vector extensions of 16 floats lower to one zmm, two
// ymm or four xmm registers. Internal linkage, so the three copies never meet at link time.
//
// Work is split into items of (KV head, block of query positions, chunk of cached rows). Every query head of
// a KV head's group and every position of the block share each K and V row read from memory. Rows go
// through in L1-sized tiles with the softmax kept online (running max m, sum l, unnormalized accumulator);
// within a tile, queries go 4 at a time, so each K or V vector loaded serves 4 of them from registers. A
// prefill's items are its query blocks; a decode step (a few items) instead splits its context into chunks, and
// the partial softmaxes are merged at the end (flash-decoding).
#pragma once
// F16 values pass between inline functions of one file only, never across an ABI boundary
#pragma GCC diagnostic ignored "-Wpsabi"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "attention.h"

namespace edge_kernels {
namespace {

typedef float F16 __attribute__((vector_size(64)));
typedef int I16 __attribute__((vector_size(64)));
typedef float F8 __attribute__((vector_size(32)));
typedef float F4 __attribute__((vector_size(16)));

constexpr size_t kLanes = 16;
constexpr size_t kTileFloats = 8192;  // a tile of K or V rows: 32 KiB, in L1
constexpr size_t kAccFloats = 32768;  // an item's accumulators (128 KiB, L2): bounds its query positions
constexpr size_t kChunkRows = 256;   // a decode step's context splits into chunks of at least this many rows
constexpr size_t kMaxChunks = 16;
constexpr size_t kFewItems = 4;  // fewer (KV head, query block) items than this: split the context
constexpr float kNoMax = -1e30f;

inline F16 load(const float* p) {
  F16 v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}

inline void store(float* p, F16 v) { __builtin_memcpy(p, &v, sizeof v); }

inline float hsum(F16 v) {
  const F8 h = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
               __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
  const F4 q = __builtin_shufflevector(h, h, 0, 1, 2, 3) + __builtin_shufflevector(h, h, 4, 5, 6, 7);
  return (q[0] + q[2]) + (q[1] + q[3]);
}

// exp(x) for x <= 0: 2^(x log2 e) split into 2^n · 2^f, |f| <= 1/2, 2^f by its degree-6 Taylor polynomial
// (relative error about 1e-7); below -87 it returns about 1.6e-38 instead of underflowing
inline F16 exp_neg(F16 x) {
  const F16 lo = x - x - 87.0f;
  x = x < lo ? lo : x;
  const F16 y = x * 1.44269504088896341f;
  const F16 n = (y + 12582912.0f) - 12582912.0f;  // round to nearest (1.5 · 2^23)
  const F16 f = y - n;
  F16 p = f * 1.5403530393381609e-4f + 1.3333558146428443e-3f;
  p = p * f + 9.6181291076284772e-3f;
  p = p * f + 5.5504108664821580e-2f;
  p = p * f + 2.4022650695910071e-1f;
  p = p * f + 6.9314718055994531e-1f;
  p = p * f + 1.0f;
  const I16 bits = (__builtin_convertvector(n, I16) + 127) << 23;
  return p * (F16)bits;  // same-size vector cast: the bits as floats, 2^n
}

// four dot products of one cached row with four queries: the row's vectors are loaded once
inline void dot4(const float* const* q, const float* row, size_t d, float* out) {
  F16 a0 = {}, a1 = {}, a2 = {}, a3 = {};
  for (size_t i = 0; i < d; i += kLanes) {
    const F16 r = load(row + i);
    a0 += load(q[0] + i) * r;
    a1 += load(q[1] + i) * r;
    a2 += load(q[2] + i) * r;
    a3 += load(q[3] + i) * r;
  }
  out[0] = hsum(a0), out[1] = hsum(a1), out[2] = hsum(a2), out[3] = hsum(a3);
}

struct Plan {
  const AttentionArgs* a;
  size_t group;   // query heads per KV head
  size_t block;   // query positions per item
  size_t blocks;  // query blocks
  size_t chunks;  // context chunks per (KV head, query block)
  size_t chunk_rows;
  size_t tile;         // cached rows per softmax step: a tile of K or V rows stays in L1 (32 KiB)
  size_t max_queries;  // group · block, rounded up to a multiple of 4
  float* state;        // per item: m[max_queries], l[max_queries], acc[max_queries][head_dim]
};

float* state_of(const Plan& p, size_t item) { return p.state + item * p.max_queries * (p.a->head_dim + 2); }

// acc[j] = corr[j] · acc[j] + Σ_r p[j][r] · V[r] for 4 queries, 16 lanes at a time: each V vector is loaded once
// for the 4 queries, and the 4 accumulators stay in registers over the tile's rows
inline void accumulate4(float* const* acc, const float* corr, const float* const* p, const float* v, size_t n,
                        size_t d) {
  for (size_t i = 0; i < d; i += kLanes) {
    F16 s0 = load(acc[0] + i) * corr[0], s1 = load(acc[1] + i) * corr[1];
    F16 s2 = load(acc[2] + i) * corr[2], s3 = load(acc[3] + i) * corr[3];
    for (size_t r = 0; r < n; ++r) {
      const F16 x = load(v + r * d + i);
      s0 += x * p[0][r];
      s1 += x * p[1][r];
      s2 += x * p[2][r];
      s3 += x * p[3][r];
    }
    store(acc[0] + i, s0), store(acc[1] + i, s1), store(acc[2] + i, s2), store(acc[3] + i, s3);
  }
}

// One query's online-softmax step over a tile: scores pj[from, valid) in, probabilities pj[0, tile) out (0
// outside [from, valid)); returns the factor its accumulator must be scaled by first.
inline float softmax_step(float* pj, size_t from, size_t valid, size_t tile, float* m, float* l) {
  if (from >= valid) {  // no row of this tile is visible to this query (causal limit or window)
    std::fill(pj, pj + tile, 0.0f);
    return 1.0f;
  }
  std::fill(pj, pj + from, kNoMax);
  std::fill(pj + valid, pj + tile, kNoMax);
  const float top = std::max(*m, *std::max_element(pj + from, pj + valid));
  const float corr = std::exp(*m - top);
  F16 sum = {};
  for (size_t r = 0; r < tile; r += kLanes) {
    const F16 x = load(pj + r);
    F16 e = exp_neg(x - top);
    e = x > kNoMax * 0.5f ? e : e - e;  // masked rows give exactly 0
    store(pj + r, e);
    sum += e;
  }
  *l = *l * corr + hsum(sum);
  *m = top;
  return corr;
}

void run_item(void* data, size_t item) {
  const Plan& p = *static_cast<const Plan*>(data);
  const AttentionArgs& a = *p.a;
  const size_t d = a.head_dim, c = item % p.chunks, b = (item / p.chunks) % p.blocks, g = item / p.chunks / p.blocks;
  const size_t s0 = b * p.block, s1 = std::min(a.seq, s0 + p.block), nq = (s1 - s0) * p.group;
  const size_t nq4 = (nq + 3) / 4 * 4, tile = p.tile;
  float* m = state_of(p, item);
  float* l = m + p.max_queries;
  float* acc = l + p.max_queries;
  std::fill(m, m + nq4, kNoMax);
  std::fill(l, l + nq4, 0.0f);
  std::fill(acc, acc + nq4 * d, 0.0f);
  std::vector<const float*> q(nq4);
  std::vector<size_t> end(nq4, 0), start(nq4, 0);  // the padding queries (past nq) see no row: probabilities 0
  for (size_t j = 0; j < nq4; ++j) {
    const size_t s = s0 + std::min(j, nq - 1) / p.group, h = g * p.group + std::min(j, nq - 1) % p.group;
    q[j] = a.q + (s * a.heads + h) * d;
    if (j >= nq) continue;
    end[j] = a.past + s + 1;  // causal: rows [0, past + s]
    if (a.window && end[j] > a.window) start[j] = end[j] - a.window;  // the window's first row
  }
  // rows before every query's window (the first position's) are skipped whole
  const size_t lo = std::max(c * p.chunk_rows, start[0]), hi = std::min(a.past + s1, c * p.chunk_rows + p.chunk_rows);
  const float* kt = a.k + g * a.capacity * d;
  const float* vt = a.v + g * a.capacity * d;
  std::vector<float> sc(nq4 * tile);  // scores, then probabilities: [query][row of the tile]
  std::vector<float> corr(nq4);
  for (size_t t0 = lo; t0 < hi; t0 += tile) {
    const size_t n = std::min(tile, hi - t0);
    // scores, 4 queries at a time over the tile's K rows: the 4 queries stay in L1, the tile too
    for (size_t j = 0; j < nq4; j += 4) {
      float four[4];
      for (size_t r = 0; r < n; ++r) {
        dot4(&q[j], kt + (t0 + r) * d, d, four);
        for (size_t u = 0; u < 4; ++u) sc[(j + u) * tile + r] = four[u] * a.scale;
      }
    }
    for (size_t j = 0; j < nq4; ++j) {
      const size_t valid = end[j] > t0 ? std::min(n, end[j] - t0) : 0;
      const size_t from = start[j] > t0 ? std::min(n, start[j] - t0) : 0;
      corr[j] = softmax_step(&sc[j * tile], from, valid, tile, &m[j], &l[j]);
    }
    for (size_t j = 0; j < nq4; j += 4) {
      float* accs[4];
      const float* probs[4];
      for (size_t u = 0; u < 4; ++u) {
        accs[u] = acc + (j + u) * d;
        probs[u] = &sc[(j + u) * tile];
      }
      accumulate4(accs, &corr[j], probs, vt + t0 * d, n, d);
    }
  }
  if (p.chunks > 1) return;  // merged by attend() once every chunk is done
  for (size_t j = 0; j < nq; ++j) {
    const size_t s = s0 + j / p.group, h = g * p.group + j % p.group;
    float* o = a.out + (s * a.heads + h) * d;
    const float inv = 1.0f / l[j];
    for (size_t i = 0; i < d; i += kLanes) store(o + i, load(acc + j * d + i) * inv);
  }
}

// out = Σ_c e^(m_c − M) acc_c / Σ_c e^(m_c − M) l_c over a query's context chunks
void merge(const Plan& p, size_t g, size_t b) {
  const AttentionArgs& a = *p.a;
  const size_t d = a.head_dim, s0 = b * p.block, s1 = std::min(a.seq, s0 + p.block), nq = (s1 - s0) * p.group;
  const size_t first = (g * p.blocks + b) * p.chunks;
  std::vector<float> w(p.chunks);
  for (size_t j = 0; j < nq; ++j) {
    float top = kNoMax;
    for (size_t c = 0; c < p.chunks; ++c) top = std::max(top, state_of(p, first + c)[j]);
    float total = 0.0f;
    for (size_t c = 0; c < p.chunks; ++c) {
      const float* st = state_of(p, first + c);
      w[c] = st[j] > kNoMax ? std::exp(st[j] - top) : 0.0f;
      total += w[c] * st[p.max_queries + j];
    }
    const size_t s = s0 + j / p.group, h = g * p.group + j % p.group;
    float* o = a.out + (s * a.heads + h) * d;
    for (size_t i = 0; i < d; i += kLanes) {
      F16 sum = {};
      for (size_t c = 0; c < p.chunks; ++c) {
        sum += load(state_of(p, first + c) + 2 * p.max_queries + j * d + i) * (w[c] / total);
      }
      store(o + i, sum);
    }
  }
}

void attend(const AttentionArgs& a, const Parallel& parallel) {
  Plan p{};
  p.a = &a;
  p.group = a.heads / a.kv_heads;
  p.block = a.seq == 1 ? 1 : std::max<size_t>(1, std::min(a.seq, kAccFloats / (p.group * a.head_dim)));
  p.blocks = (a.seq + p.block - 1) / p.block;
  const size_t total = a.past + a.seq;
  p.chunks = 1;
  if (a.kv_heads * p.blocks < kFewItems) {
    p.chunks = std::clamp<size_t>((total + kChunkRows - 1) / kChunkRows, 1, kMaxChunks);
  }
  p.chunk_rows = (total + p.chunks - 1) / p.chunks;
  p.chunk_rows = (p.chunk_rows + kLanes - 1) / kLanes * kLanes;
  p.max_queries = (p.group * p.block + 3) / 4 * 4;
  p.tile = std::clamp<size_t>(kTileFloats / a.head_dim / kLanes * kLanes, kLanes, 4 * kLanes);
  const size_t items = a.kv_heads * p.blocks * p.chunks;
  std::vector<float> state(items * p.max_queries * (a.head_dim + 2));
  p.state = state.data();
  parallel(run_item, items, &p);
  if (p.chunks == 1) return;
  for (size_t g = 0; g < a.kv_heads; ++g) {
    for (size_t b = 0; b < p.blocks; ++b) merge(p, g, b);
  }
}

}  // namespace
}  // namespace edge_kernels
