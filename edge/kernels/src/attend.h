// The attention kernel's one source, compiled once per ISA (attend_avx512.cpp, attend_avx2.cpp,
// attend_scalar.cpp set the target and include this): GCC vector extensions of 16 floats lower to one zmm, two
// ymm or four xmm registers. Internal linkage, so the three copies never meet at link time.
//
// Work is split into items of (KV head, block of query positions, chunk of cached rows). Every query head of
// a KV head's group and every position of the block share each K and V row read. Rows go through in tiles of
// kTile with the softmax kept online (running max m, sum l, unnormalized accumulator). A prefill's items are
// its query blocks; a decode step (a few items) instead splits its context into chunks, and the partial
// softmaxes are merged at the end (flash-decoding).
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
constexpr size_t kTile = 32;         // cached rows per softmax step
constexpr size_t kAccFloats = 8192;  // an item's accumulators (32 KiB, L1): bounds its query positions
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

inline float dot1(const float* q, const float* row, size_t d) {
  F16 a = {};
  for (size_t i = 0; i < d; i += kLanes) a += load(q + i) * load(row + i);
  return hsum(a);
}

struct Plan {
  const AttentionArgs* a;
  size_t group;   // query heads per KV head
  size_t block;   // query positions per item
  size_t blocks;  // query blocks
  size_t chunks;  // context chunks per (KV head, query block)
  size_t chunk_rows;
  size_t max_queries;  // group · block
  float* state;        // per item: m[max_queries], l[max_queries], acc[max_queries][head_dim]
};

float* state_of(const Plan& p, size_t item) { return p.state + item * p.max_queries * (p.a->head_dim + 2); }

void run_item(void* data, size_t item) {
  const Plan& p = *static_cast<const Plan*>(data);
  const AttentionArgs& a = *p.a;
  const size_t d = a.head_dim, c = item % p.chunks, b = (item / p.chunks) % p.blocks, g = item / p.chunks / p.blocks;
  const size_t s0 = b * p.block, s1 = std::min(a.seq, s0 + p.block), nq = (s1 - s0) * p.group;
  float* m = state_of(p, item);
  float* l = m + p.max_queries;
  float* acc = l + p.max_queries;
  std::fill(m, m + nq, kNoMax);
  std::fill(l, l + nq, 0.0f);
  std::fill(acc, acc + nq * d, 0.0f);
  std::vector<const float*> q(nq + 3);
  std::vector<size_t> end(nq);
  for (size_t j = 0; j < nq; ++j) {
    const size_t s = s0 + j / p.group, h = g * p.group + j % p.group;
    q[j] = a.q + (s * a.heads + h) * d;
    end[j] = a.past + s + 1;  // causal: rows [0, past + s]
  }
  for (size_t j = nq; j < nq + 3; ++j) q[j] = q[0];  // dot4's tail reads a real query, its results are unused
  const size_t lo = c * p.chunk_rows, hi = std::min(a.past + s1, lo + p.chunk_rows);
  const float* kt = a.k + g * a.capacity * d;
  const float* vt = a.v + g * a.capacity * d;
  std::vector<float> sc((nq + 3) * kTile);  // scores, then probabilities: [query][row of the tile]
  for (size_t t0 = lo; t0 < hi; t0 += kTile) {
    const size_t n = std::min(kTile, hi - t0);
    float four[4];
    for (size_t r = 0; r < n; ++r) {
      const float* row = kt + (t0 + r) * d;
      for (size_t j = 0; j < nq; j += 4) {
        dot4(&q[j], row, d, four);
        for (size_t u = 0; u < 4; ++u) sc[(j + u) * kTile + r] = four[u] * a.scale;
      }
    }
    for (size_t j = 0; j < nq; ++j) {
      float* pj = &sc[j * kTile];
      const size_t valid = end[j] > t0 ? std::min(n, end[j] - t0) : 0;
      if (valid == 0) {  // a later query position's row: nothing of this tile is visible to this query
        std::fill(pj, pj + kTile, 0.0f);
        continue;
      }
      std::fill(pj + valid, pj + kTile, kNoMax);
      const float top = std::max(m[j], *std::max_element(pj, pj + valid));
      const float corr = std::exp(m[j] - top);
      F16 sum = {};
      for (size_t r = 0; r < kTile; r += kLanes) {
        const F16 x = load(pj + r);
        F16 e = exp_neg(x - top);
        e = x > kNoMax * 0.5f ? e : e - e;  // masked rows give exactly 0
        store(pj + r, e);
        sum += e;
      }
      l[j] = l[j] * corr + hsum(sum);
      m[j] = top;
      if (corr != 1.0f) {
        float* aj = acc + j * d;
        for (size_t i = 0; i < d; i += kLanes) store(aj + i, load(aj + i) * corr);
      }
    }
    for (size_t r = 0; r < n; ++r) {
      const float* row = vt + (t0 + r) * d;
      for (size_t i = 0; i < d; i += kLanes) {
        const F16 v = load(row + i);
        for (size_t j = 0; j < nq; ++j) {
          float* aj = acc + j * d + i;
          store(aj, load(aj) + v * sc[j * kTile + r]);
        }
      }
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
  for (size_t j = 0; j < nq; ++j) {
    float top = kNoMax;
    for (size_t c = 0; c < p.chunks; ++c) top = std::max(top, state_of(p, first + c)[j]);
    float total = 0.0f;
    std::vector<float> w(p.chunks);
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
  p.chunk_rows = (p.chunk_rows + kTile - 1) / kTile * kTile;
  p.max_queries = p.group * p.block;
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
