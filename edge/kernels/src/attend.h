// The attention kernel's one source, compiled once per ISA (attend_avx512.cpp, attend_avx2.cpp,
// attend_scalar.cpp set the target and the vector width, then include this): GCC vector extensions of kLanes
// floats, one zmm, ymm or xmm register. Internal linkage, so the three copies never meet at link time.
//
// Work is split into items of (KV head, block of query positions, chunk of cached rows). Every query head of
// a KV head's group and every position of the block share each K and V row read from memory. Rows go
// through in L1-sized tiles with the softmax kept online (running max m, sum l, unnormalized accumulator);
// within a tile, queries go up to 4 at a time, so each K or V vector loaded serves 4 of them from registers. A
// prefill's items are its query blocks; a decode step (a few items) instead splits its context into chunks, and
// the partial softmaxes are merged at the end (flash-decoding).
#pragma once
// Vec values pass between inline functions of one file only, never across an ABI boundary
#pragma GCC diagnostic ignored "-Wpsabi"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>
#if EDGE_VEC_LANES > 4
// GCC 12's own intrinsics (_mm512_cvtph_ps) read intentionally undefined registers: not ours to fix
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#endif

#include "attention.h"
#include "vecmath.h"

namespace edge_kernels {
namespace {

// Vec and IVec (kLanes floats or ints, the includer's EDGE_VEC_LANES) come from vecmath.h
typedef float F16 __attribute__((vector_size(64)));
typedef float F8 __attribute__((vector_size(32)));
typedef float F4 __attribute__((vector_size(16)));

constexpr size_t kRows = 16;  // tiles and context chunks hold a multiple of this many rows (of kLanes)
constexpr size_t kTileFloats = 8192;  // a tile of K or V rows: 32 KiB, in L1
constexpr size_t kAccFloats = 32768;  // an item's accumulators (128 KiB, L2): bounds its query positions
constexpr size_t kChunkRows = 256;   // a decode step's context splits into chunks of at least this many rows
constexpr size_t kMaxChunks = 16;
constexpr size_t kFewItems = 4;  // fewer (KV head, query block) items than this: split the context
constexpr float kNoMax = -1e30f;

inline Vec load(const float* p) {
  Vec v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}

// kLanes binary16 values (a half cache's row) widened to fp32: one vcvtph2ps on AVX-512 and AVX2 (F16C); the
// baseline build converts each value in software (libgcc's _Float16 conversion). Not __builtin_convertvector:
// GCC 12 lowers it to one conversion per lane.
inline Vec load(const uint16_t* p) {
#if EDGE_VEC_LANES == 16
  return (Vec)_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
#elif EDGE_VEC_LANES == 8
  return (Vec)_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
#else
  Vec v;
  for (size_t i = 0; i < kLanes; ++i) {
    _Float16 h;
    std::memcpy(&h, p + i, sizeof h);
    v[i] = static_cast<float>(h);
  }
  return v;
#endif
}

inline void store(float* p, Vec v) { __builtin_memcpy(p, &v, sizeof v); }

// binary16(from[i]), round to nearest even, kLanes at a time where the target converts vectors (n is any)
void narrow(const float* from, uint16_t* to, size_t n) {
  size_t i = 0;
#if EDGE_VEC_LANES == 16
  for (; i + 16 <= n; i += 16) {
    const __m256i h = _mm512_cvtps_ph(_mm512_loadu_ps(from + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(to + i), h);
  }
#elif EDGE_VEC_LANES == 8
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(from + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(to + i), h);
  }
#endif
  for (; i < n; ++i) {
    const _Float16 h = static_cast<_Float16>(from[i]);
    std::memcpy(to + i, &h, sizeof h);
  }
}

// the sum of a vector's lanes (one overload per width)
inline float hsum(F4 q) { return (q[0] + q[2]) + (q[1] + q[3]); }
inline float hsum(F8 h) {
  return hsum(__builtin_shufflevector(h, h, 0, 1, 2, 3) + __builtin_shufflevector(h, h, 4, 5, 6, 7));
}
inline float hsum(F16 v) {
  return hsum(__builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
              __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15));
}

// NQ (1..4) dot products of one cached row (T: float or binary16) with NQ queries: the row's vectors are loaded once
template <int NQ, typename T>
inline void dots(const float* const* q, const T* row, size_t d, float* out) {
  Vec a[NQ] = {};
  for (size_t i = 0; i < d; i += kLanes) {
    const Vec r = load(row + i);
    for (int u = 0; u < NQ; ++u) a[u] += load(q[u] + i) * r;
  }
  for (int u = 0; u < NQ; ++u) out[u] = hsum(a[u]);
}

struct Plan {
  const AttentionArgs* a;
  size_t group;   // query heads per KV head
  size_t block;   // query positions per item
  size_t blocks;  // query blocks
  size_t chunks;  // context chunks per (KV head, query block)
  size_t chunk_rows;
  size_t tile;         // cached rows per softmax step: a tile of K or V rows stays in L1 (32 KiB)
  size_t max_queries;  // group · block: the query heads of an item
  float* state;        // per item: m[max_queries], l[max_queries], acc[max_queries][head_dim]
};

float* state_of(const Plan& p, size_t item) { return p.state + item * p.max_queries * (p.a->head_dim + 2); }

// acc[j] = corr[j] · acc[j] + Σ_r p[j][r] · V[r] for NQ (1..4) queries, kLanes at a time: each V vector is
// loaded once for the NQ queries, and their accumulators stay in registers over the tile's rows
template <int NQ, typename T>
inline void accumulate(float* const* acc, const float* corr, const float* const* p, const T* v, size_t n,
                       size_t d) {
  for (size_t i = 0; i < d; i += kLanes) {
    Vec s[NQ];
    for (int u = 0; u < NQ; ++u) s[u] = load(acc[u] + i) * corr[u];
    for (size_t r = 0; r < n; ++r) {
      const Vec x = load(v + r * d + i);
      for (int u = 0; u < NQ; ++u) s[u] += x * p[u][r];
    }
    for (int u = 0; u < NQ; ++u) store(acc[u] + i, s[u]);
  }
}

// fn(std::integral_constant<int, NQ>) for NQ = min(4, left): the queries a 4-wide step has left
template <typename Fn>
inline void with_queries(size_t left, Fn&& fn) {
  switch (left) {
    case 1: fn(std::integral_constant<int, 1>{}); break;
    case 2: fn(std::integral_constant<int, 2>{}); break;
    case 3: fn(std::integral_constant<int, 3>{}); break;
    default: fn(std::integral_constant<int, 4>{}); break;
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
  Vec sum = {};
  for (size_t r = 0; r < tile; r += kLanes) {
    const Vec x = load(pj + r);
    Vec e = exp_neg(x - top);
    e = x > kNoMax * 0.5f ? e : e - e;  // masked rows give exactly 0
    store(pj + r, e);
    sum += e;
  }
  *l = *l * corr + hsum(sum);
  *m = top;
  return corr;
}

// one item over a cache of T (float, or binary16 bits)
template <typename T>
void run_item_of(const Plan& p, size_t item) {
  const AttentionArgs& a = *p.a;
  const size_t d = a.head_dim, c = item % p.chunks, b = (item / p.chunks) % p.blocks, g = item / p.chunks / p.blocks;
  const size_t s0 = b * p.block, s1 = std::min(a.seq, s0 + p.block), nq = (s1 - s0) * p.group;
  const size_t tile = p.tile;
  float* m = state_of(p, item);
  float* l = m + p.max_queries;
  float* acc = l + p.max_queries;
  std::fill(m, m + nq, kNoMax);
  std::fill(l, l + nq, 0.0f);
  std::fill(acc, acc + nq * d, 0.0f);
  std::vector<const float*> q(nq);
  std::vector<size_t> end(nq, 0), start(nq, 0);
  for (size_t j = 0; j < nq; ++j) {
    const size_t s = s0 + j / p.group, h = g * p.group + j % p.group;
    q[j] = a.q + (s * a.heads + h) * d;
    if (a.ends) {  // image blocks: the op's rows for this position
      start[j] = a.starts[s];
      end[j] = a.ends[s];
      continue;
    }
    end[j] = a.past + s + 1;  // causal: rows [0, past + s]
    if (a.window && end[j] > a.window) start[j] = end[j] - a.window;  // the window's first row
  }
  // rows before every query's first, or after every query's last, are skipped whole
  const size_t first = *std::min_element(start.begin(), start.end()), last = *std::max_element(end.begin(), end.end());
  const size_t lo = std::max(c * p.chunk_rows, first), hi = std::min(last, c * p.chunk_rows + p.chunk_rows);
  const T* kt = static_cast<const T*>(a.k) + g * a.capacity * d;
  const T* vt = static_cast<const T*>(a.v) + g * a.capacity * d;
  std::vector<float> sc(nq * tile);  // scores, then probabilities: [query][row of the tile]
  std::vector<float> corr(nq);
  for (size_t t0 = lo; t0 < hi; t0 += tile) {
    const size_t n = std::min(tile, hi - t0);
    // scores, up to 4 queries at a time over the tile's K rows: the queries stay in L1, the tile too
    for (size_t j = 0; j < nq; j += 4) {
      with_queries(nq - j, [&](auto count) {
        constexpr int NQ = decltype(count)::value;
        float out[NQ];
        for (size_t r = 0; r < n; ++r) {
          dots<NQ>(&q[j], kt + (t0 + r) * d, d, out);
          for (int u = 0; u < NQ; ++u) sc[(j + u) * tile + r] = out[u] * a.scale;
        }
      });
    }
    for (size_t j = 0; j < nq; ++j) {
      const size_t valid = end[j] > t0 ? std::min(n, end[j] - t0) : 0;
      const size_t from = start[j] > t0 ? std::min(n, start[j] - t0) : 0;
      corr[j] = softmax_step(&sc[j * tile], from, valid, tile, &m[j], &l[j]);
    }
    for (size_t j = 0; j < nq; j += 4) {
      float* accs[4] = {};
      const float* probs[4] = {};
      for (size_t u = 0; u < 4 && j + u < nq; ++u) {
        accs[u] = acc + (j + u) * d;
        probs[u] = &sc[(j + u) * tile];
      }
      with_queries(nq - j, [&](auto count) {
        accumulate<decltype(count)::value>(accs, &corr[j], probs, vt + t0 * d, n, d);
      });
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

void run_item(void* data, size_t item) {
  const Plan& p = *static_cast<const Plan*>(data);
  if (p.a->half) {
    run_item_of<uint16_t>(p, item);
  } else {
    run_item_of<float>(p, item);
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
      Vec sum = {};
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
  p.chunk_rows = (p.chunk_rows + kRows - 1) / kRows * kRows;
  p.max_queries = p.group * p.block;
  p.tile = std::clamp<size_t>(kTileFloats / a.head_dim / kRows * kRows, kRows, 4 * kRows);
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
