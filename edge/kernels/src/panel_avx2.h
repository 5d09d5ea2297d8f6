// The packed panel, task loop and micro-kernel of the two 256-bit GEMMs, AVX2 (panel_avx2.cpp) and AVX-VNNI
// (panel_avxvnni.cpp): panel_avx512vnni.cpp's design at half the width. A task's weight panel is widened once per
// K chunk into a small per-task buffer, then every row of its slab passes over that buffer. The paths differ only
// in how a block's quads are summed (micro's Quads). Include it after the file's #pragma GCC target: it compiles
// under the includer's ISA.
//
// Packed panel (on the task's stack, per K chunk of kChunk blocks; the weight tensor itself is only read):
// for block b of the chunk and quad t (0..7), kVectors vectors of 32 bytes, vector v holding columns 8v..8v+7,
// 4 unsigned nibbles (0..15) per column: quad t < 4 the low nibbles of bytes 4t..4t+3 of the column's block,
// quad t >= 4 the high nibbles of bytes 4(t-4)..4(t-4)+3, i.e. the weights of the 4 activations at
// qe[b * 16 + 4t] or qo[b * 16 + 4(t - 4)] (int4.h). Next to it, per block, kVectors vectors of 8 fp32 weight
// scales. Columns past N get zero weights and scales.
#pragma once

#include <immintrin.h>

#include "int4.h"

namespace edge_kernels {
namespace {

constexpr int kVectors = 2;                       // 32-byte column vectors per micro-kernel: 16 columns
constexpr size_t kColumns = 8 * kVectors;         // columns per packed panel
constexpr size_t kChunk = 16;                     // blocks per packed chunk: 8 KiB
constexpr size_t kBlockPack = 8 * kVectors * 32;  // packed bytes per block
constexpr size_t kScalePack = kVectors * 8;       // packed scales per block
static_assert(kChunk % 8 == 0, "pack() transposes the scales 8 blocks at a time");

// r[c] = the 8 dwords of row c  →  r[d] = dword d of the 8 rows (an 8 × 8 dword transpose in 24 shuffles).
inline void transpose8(__m256i r[8]) {
  __m256i u[8];
  for (int g = 0; g < 8; g += 4) {
    const __m256i a0 = _mm256_unpacklo_epi32(r[g], r[g + 1]);  // per 128-bit lane L: dwords 4L, 4L+1 of both
    const __m256i a1 = _mm256_unpackhi_epi32(r[g], r[g + 1]);  // dwords 4L+2, 4L+3
    const __m256i a2 = _mm256_unpacklo_epi32(r[g + 2], r[g + 3]);
    const __m256i a3 = _mm256_unpackhi_epi32(r[g + 2], r[g + 3]);
    u[g] = _mm256_unpacklo_epi64(a0, a2);      // lane L: dword 4L of rows g..g+3
    u[g + 1] = _mm256_unpackhi_epi64(a0, a2);  // dword 4L+1
    u[g + 2] = _mm256_unpacklo_epi64(a1, a3);  // dword 4L+2
    u[g + 3] = _mm256_unpackhi_epi64(a1, a3);  // dword 4L+3
  }
  for (int j = 0; j < 4; ++j) {
    r[j] = _mm256_permute2x128_si256(u[j], u[4 + j], 0x20);      // the low lanes: dword j
    r[4 + j] = _mm256_permute2x128_si256(u[j], u[4 + j], 0x31);  // the high lanes: dword 4 + j
  }
}

// The first `dwords` dwords of p (1..8), the rest zero; never reads past them.
inline __m256i load_dwords(const void* p, size_t dwords) {
  if (dwords >= 8) return _mm256_loadu_si256(static_cast<const __m256i*>(p));
  const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(dwords)),
                                          _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  return _mm256_maskload_epi32(static_cast<const int*>(p), mask);
}

// Packs blocks [c0, c1) of columns [n0, min(n0 + kColumns, n1)) (c1 - c0 <= kChunk) into wp / sp.
inline void pack(const Int4Weights& w, size_t n0, size_t n1, size_t c0, size_t c1, uint8_t* wp, float* sp) {
  const __m256i low = _mm256_set1_epi8(0x0F);
  for (int v = 0; v < kVectors; ++v) {
    const size_t first = n0 + 8 * v;
    const size_t cols = first >= n1 ? 0 : (n1 - first < 8 ? n1 - first : 8);
    __m256i r[8];
    for (size_t b = c0; b < c1; b += 2) {  // 2 blocks (32 bytes) of each of the 8 columns per step
      const size_t dwords = c1 - b < 2 ? 4 : 8;
      for (size_t c = 0; c < 8; ++c) {
        r[c] = c < cols ? load_dwords(w.q + ((first + c) * w.nb + b) * kBlockBytes, dwords) : _mm256_setzero_si256();
      }
      transpose8(r);  // r[4L + j]: dword j of block b + L, for the 8 columns
      uint8_t* out = wp + (b - c0) * kBlockPack + v * 32;
      for (int d = 0; d < 8; ++d) {
        uint8_t* quad = out + (d / 4) * kBlockPack + (d % 4) * kVectors * 32;
        _mm256_store_si256(reinterpret_cast<__m256i*>(quad), _mm256_and_si256(r[d], low));
        _mm256_store_si256(reinterpret_cast<__m256i*>(quad + 4 * kVectors * 32),
                           _mm256_and_si256(_mm256_srli_epi16(r[d], 4), low));
      }
    }
    for (size_t b = c0; b < c1; b += 8) {  // scales: 8 blocks of 8 columns per transpose
      const size_t left = c1 - b < 8 ? c1 - b : 8;
      for (size_t c = 0; c < 8; ++c) {
        r[c] = c < cols ? load_dwords(w.s + (first + c) * w.nb + b, left) : _mm256_setzero_si256();
      }
      transpose8(r);
      for (size_t l = 0; l < 8; ++l) {
        _mm256_store_si256(reinterpret_cast<__m256i*>(sp + (b - c0 + l) * kScalePack + v * 8), r[l]);
      }
    }
  }
}

// The micro-kernel: rows m0..m0+MR-1 × the packed panel over blocks [c0, c1), y (at the panel's first column)
// = (first ? 0 : y) + the chunk's products, only the columns masks[v] selects. Per block and per column lane, an
// integer sum over the block's 8 quads, one Quads::step per quad with the row's 4 activations broadcast as one
// dword, from Quads::start(a, row, b); then acc += sw · Quads::scaled(sum, a, row, b) in fp32. Each column is a
// lane, so no horizontal sums, and its blocks are added in order.
template <typename Quads, int MR>
void micro(const Q8Rows& a, size_t m0, const uint8_t* wp, const float* sp, size_t c0, size_t c1, float* y,
           size_t ldy, const __m256i* masks, bool first) {
  const size_t row_bytes = a.nbp * kBlockBytes;  // of qe and qo
  const int8_t* qe = a.qe + m0 * row_bytes;
  const int8_t* qo = a.qo + m0 * row_bytes;
  __m256 acc[MR][kVectors];
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < kVectors; ++v) acc[i][v] = _mm256_setzero_ps();
  for (size_t b = c0; b < c1; ++b, wp += kBlockPack, sp += kScalePack) {
    __m256i sum[MR][kVectors];
    for (int i = 0; i < MR; ++i) {
      const __m256i start = Quads::start(a, m0 + i, b);
      for (int v = 0; v < kVectors; ++v) sum[i][v] = start;
    }
#pragma GCC unroll 8
    for (int t = 0; t < 8; ++t) {
      __m256i wv[kVectors];
      for (int v = 0; v < kVectors; ++v) {
        wv[v] = _mm256_load_si256(reinterpret_cast<const __m256i*>(wp + (t * kVectors + v) * 32));
      }
      const int8_t* src = (t < 4 ? qe : qo) + b * kBlockBytes + (t % 4) * 4;
      for (int i = 0; i < MR; ++i) {
        const __m256i av = _mm256_set1_epi32(quad_at(src + i * row_bytes));
        for (int v = 0; v < kVectors; ++v) sum[i][v] = Quads::step(sum[i][v], wv[v], av);
      }
    }
    for (int i = 0; i < MR; ++i) {
      for (int v = 0; v < kVectors; ++v) {
        const __m256 block = Quads::scaled(sum[i][v], a, m0 + i, b);
        acc[i][v] = _mm256_fmadd_ps(_mm256_load_ps(sp + v * 8), block, acc[i][v]);
      }
    }
  }
  for (int i = 0; i < MR; ++i) {
    float* row = y + (m0 + i) * ldy;
    for (int v = 0; v < kVectors; ++v) {
      __m256 out = acc[i][v];
      if (!first) out = _mm256_add_ps(out, _mm256_maskload_ps(row + 8 * v, masks[v]));
      _mm256_maskstore_ps(row + 8 * v, masks[v], out);
    }
  }
}

// The panel kernel (int4.h's PanelFn) on micro<Quads, Rows>: chunk-major, so a chunk of the slab's activations
// stays in L2 while every panel of the task passes over it.
template <typename Quads, int Rows>
inline void panels(const Q8Rows& a, size_t m0, size_t rows, const Int4Weights& w, size_t n0, size_t n1, float* y,
                   size_t ldy) {
  // the packed chunk lives on this task's stack: no allocation, so nothing can throw inside onnxruntime's
  // thread pool
  alignas(64) uint8_t wp[kChunk * kBlockPack];
  alignas(64) float sp[kChunk * kScalePack];
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (size_t c0 = 0; c0 < w.nb; c0 += kChunk) {
    const size_t c1 = c0 + kChunk < w.nb ? c0 + kChunk : w.nb;
    for (size_t n = n0; n < n1; n += kColumns) {
      __m256i masks[kVectors];
      for (int v = 0; v < kVectors; ++v) {
        const size_t first = n + 8 * v;
        const int cols = static_cast<int>(first >= n1 ? 0 : (n1 - first < 8 ? n1 - first : 8));
        masks[v] = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols), lanes);
      }
      pack(w, n, n1, c0, c1, wp, sp);
      size_t m = m0;
      for (; m + Rows <= m0 + rows; m += Rows) {
        micro<Quads, Rows>(a, m, wp, sp, c0, c1, y + n, ldy, masks, c0 == 0);
      }
      if (m < m0 + rows) {
        with_rows(m0 + rows - m, [&](auto mr) {
          micro<Quads, decltype(mr)::value>(a, m, wp, sp, c0, c1, y + n, ldy, masks, c0 == 0);
        });
      }
    }
  }
}

}  // namespace
}  // namespace edge_kernels
