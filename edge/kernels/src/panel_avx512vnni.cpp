// The AVX-512 VNNI GEMM (prefill): the weights of a panel of 48 columns are widened once per K chunk into a
// small buffer laid out for the micro-kernel, then every row of the task's slab passes over that buffer.
//
// Packed panel (on the task's stack, per K chunk of kChunk blocks; nothing persists between calls, the weight
// tensor itself is only read): for block b of the chunk and quad t (0..7) of that block, kVectors vectors of 64
// bytes, vector v holding columns 16v..16v+15, 4 unsigned nibbles (0..15) per column:
//     quad t < 4:  the low nibbles of bytes 4t..4t+3 of the column's 16-byte block (elements 8t, 8t+2, 8t+4, 8t+6)
//     quad t >= 4: the high nibbles of bytes 4(t-4)..4(t-4)+3 (the odd elements after them)
// which are exactly the weights of the 4 int8 activations at qe[b * 16 + 4t] (t < 4) or qo[b * 16 + 4(t - 4)]
// (int4.h's even/odd split), so one vpdpbusd with that activation dword broadcast adds a quad's 4 products to
// 16 columns at once. Next to it, per block, kVectors vectors of 16 fp32 weight scales. Columns past N get
// zero weights and scales; blocks past the last are never read.
//
// Micro-kernel: kRows activation rows × kVectors × 16 columns. Per block, int32 dot products over the 8 quads
// (kRows × kVectors accumulators) that start at the zero point's term −8 · Σa (int4.h's zero_term), so they end
// at the exact Σ (nib − 8) · a; then in fp32 per column lane: acc += sw · (sa · dot), i.e. 3 fp32 operations
// (cvt, mul, fma) per 8 vpdpbusd. Starting from −8 · Σa instead of adding −8 · sa · Σa in fp32 measured
// 2–11% faster (no zeroing, no per-row broadcast of the correction). Each column is a lane, so no horizontal sums;
// per column the blocks are added in order, as the GEMV does. Pattern: the packed-B GEMM of BLIS and
// llama.cpp's repacked Q4_0×8 blocks, here repacked on the fly per task, on MatMulNBits' byte order.
//
// Measured at M = 288 on one core (Sapphire Rapids): packing 16 blocks at a time (24 KiB, in L1) beats 32
// (slightly) and 64 (by a third); 4 rows × 48 columns fill the 32 registers (12 int32 + 12 fp32 accumulators).
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,fma")
// GCC 12's own intrinsics (cvtepi32_ps) read intentionally undefined registers: not ours to fix
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "int4.h"

namespace edge_kernels {
namespace {

constexpr int kVectors = 3;                    // 64-byte column vectors per micro-kernel: 48 columns
constexpr size_t kColumns = 16 * kVectors;     // columns per packed panel
constexpr int kRows = 4;                       // activation rows per micro-kernel: 12 int32 + 12 fp32 accumulators
constexpr size_t kChunk = 16;                  // blocks per packed chunk: 24 KiB, L1-resident
constexpr size_t kBlockPack = 8 * kVectors * 64;  // packed bytes per block
constexpr size_t kScalePack = kVectors * 16;      // packed scales per block
static_assert(kChunk % 16 == 0, "pack() transposes the scales 16 blocks at a time");

// r[c] = the 16 dwords of row c  →  r[d] = dword d of the 16 rows (a 16 × 16 dword transpose in 64 shuffles).
inline void transpose16(__m512i r[16]) {
  __m512i t[16];
  for (int g = 0; g < 16; g += 4) {
    const __m512i a0 = _mm512_unpacklo_epi32(r[g], r[g + 1]);  // per 128-bit lane L: dwords 4L, 4L+1 of both
    const __m512i a1 = _mm512_unpackhi_epi32(r[g], r[g + 1]);  // dwords 4L+2, 4L+3
    const __m512i a2 = _mm512_unpacklo_epi32(r[g + 2], r[g + 3]);
    const __m512i a3 = _mm512_unpackhi_epi32(r[g + 2], r[g + 3]);
    t[g] = _mm512_unpacklo_epi64(a0, a2);      // lane L: dword 4L of rows g..g+3
    t[g + 1] = _mm512_unpackhi_epi64(a0, a2);  // dword 4L+1
    t[g + 2] = _mm512_unpacklo_epi64(a1, a3);  // dword 4L+2
    t[g + 3] = _mm512_unpackhi_epi64(a1, a3);  // dword 4L+3
  }
  for (int j = 0; j < 4; ++j) {  // out[4L + j], lane g = t[4g + j], lane L
    const __m512i s0 = _mm512_shuffle_i32x4(t[j], t[4 + j], 0x44);
    const __m512i s1 = _mm512_shuffle_i32x4(t[j], t[4 + j], 0xEE);
    const __m512i s2 = _mm512_shuffle_i32x4(t[8 + j], t[12 + j], 0x44);
    const __m512i s3 = _mm512_shuffle_i32x4(t[8 + j], t[12 + j], 0xEE);
    r[j] = _mm512_shuffle_i32x4(s0, s2, 0x88);
    r[4 + j] = _mm512_shuffle_i32x4(s0, s2, 0xDD);
    r[8 + j] = _mm512_shuffle_i32x4(s1, s3, 0x88);
    r[12 + j] = _mm512_shuffle_i32x4(s1, s3, 0xDD);
  }
}

// Int8 weights (int8.h: 32 bytes per block, element order) packed into the same panel: each block's bytes are
// reordered to its 16 even elements, then its 16 odd ones, so dword t is exactly quad t of the int4 layout (the
// weights of qe[b * 16 + 4t] for t < 4, of qo[b * 16 + 4(t - 4)] after), and the micro-kernel runs unchanged
// but for the zero point: 128 instead of 8.
template <int Bits>
constexpr size_t kPackBytes = Bits == 4 ? kBlockBytes : 2 * kBlockBytes;  // weight bytes per block

// 64 bytes = 2 int8 blocks of one column, each reordered to [its 16 even bytes, its 16 odd bytes]
inline __m512i evens_then_odds(__m512i x) {
  // per 16-byte lane: 8 even bytes, then 8 odd ones; then per block (two lanes) the evens of both lanes first
  const __m512i bytes = _mm512_set4_epi32(0x0F0D0B09, 0x07050301, 0x0E0C0A08, 0x06040200);
  const __m512i lanes = _mm512_set_epi64(7, 5, 6, 4, 3, 1, 2, 0);
  return _mm512_permutexvar_epi64(lanes, _mm512_shuffle_epi8(x, bytes));
}

// Packs blocks [c0, c1) of columns [n0, min(n0 + kColumns, n1)) (c1 - c0 <= kChunk) into wp / sp.
template <int Bits>
void pack(const Int4Weights& w, size_t n0, size_t n1, size_t c0, size_t c1, uint8_t* wp, float* sp) {
  const __m512i low = _mm512_set1_epi8(0x0F);
  constexpr size_t kStep = 64 / kPackBytes<Bits>;  // blocks per 64-byte load: 4 (int4) or 2 (int8)
  for (int v = 0; v < kVectors; ++v) {
    const size_t first = n0 + 16 * v;
    const size_t cols = first >= n1 ? 0 : (n1 - first < 16 ? n1 - first : 16);
    __m512i r[16];
    // kStep blocks (64 bytes) of each of the 16 columns per step; a shorter last step never reads past c1
    for (size_t b = c0; b < c1; b += kStep) {
      const size_t left = c1 - b < kStep ? c1 - b : kStep;
      const __mmask64 mask = left == kStep ? ~__mmask64{0} : (__mmask64{1} << (left * kPackBytes<Bits>)) - 1;
      for (size_t c = 0; c < 16; ++c) {
        r[c] = c < cols ? _mm512_maskz_loadu_epi8(mask, w.q + ((first + c) * w.nb + b) * kPackBytes<Bits>)
                        : _mm512_setzero_si512();
        if (Bits == 8) r[c] = evens_then_odds(r[c]);
      }
      transpose16(r);  // r[d]: dword d of the 64 bytes, for the 16 columns
      uint8_t* out = wp + (b - c0) * kBlockPack + v * 64;
      for (int d = 0; d < 16; ++d) {
        if (Bits == 8) {  // dword d: quad d % 8 of block b + d / 8
          _mm512_store_si512(out + (d / 8) * kBlockPack + (d % 8) * kVectors * 64, r[d]);
          continue;
        }
        uint8_t* quad = out + (d / 4) * kBlockPack + (d % 4) * kVectors * 64;  // dword j of block b + L
        _mm512_store_si512(quad, _mm512_and_si512(r[d], low));
        _mm512_store_si512(quad + 4 * kVectors * 64, _mm512_and_si512(_mm512_srli_epi16(r[d], 4), low));
      }
    }
    for (size_t b = c0; b < c1; b += 16) {  // scales: 16 blocks of 16 columns per transpose
      const size_t left = c1 - b < 16 ? c1 - b : 16;
      const __mmask16 mask = static_cast<__mmask16>((1u << left) - 1);
      for (size_t c = 0; c < 16; ++c) {
        r[c] = c < cols ? _mm512_castps_si512(_mm512_maskz_loadu_ps(mask, w.s + (first + c) * w.nb + b))
                        : _mm512_setzero_si512();
      }
      transpose16(r);
      for (size_t l = 0; l < 16; ++l) _mm512_store_si512(sp + (b - c0 + l) * kScalePack + v * 16, r[l]);
    }
  }
}

// Rows m0..m0+MR-1 × the packed panel over blocks [c0, c1): y = (first ? 0 : y) + the chunk's products. The
// zero point is 8 << Shift (int4: 8, int8: 128), so a block's sum starts at zero_term (−8 · Σa) << Shift.
template <int MR, int Shift>
void micro(const Q8Rows& a, size_t m0, const uint8_t* wp, const float* sp, size_t c0, size_t c1, float* y,
           size_t ldy, const __mmask16* masks, bool first) {
  const int8_t* qe[MR];
  const int8_t* qo[MR];
  const float* ls[MR];
  const int32_t* zt[MR];
  for (int i = 0; i < MR; ++i) {
    qe[i] = a.qe + (m0 + i) * a.nbp * kBlockBytes;
    qo[i] = a.qo + (m0 + i) * a.nbp * kBlockBytes;
    ls[i] = a.lane_scale + (m0 + i) * a.nbp * 4;
    zt[i] = a.zero_term + (m0 + i) * a.nbp;
  }
  __m512 acc[MR][kVectors];
  for (int i = 0; i < MR; ++i)
    for (int v = 0; v < kVectors; ++v) acc[i][v] = _mm512_setzero_ps();
  for (size_t b = c0; b < c1; ++b, wp += kBlockPack, sp += kScalePack) {
    __m512i dot[MR][kVectors];
    for (int i = 0; i < MR; ++i) {  // the zero point's term first: the block's sum is then exact in int32
      const __m512i start = _mm512_set1_epi32(zt[i][b] * (1 << Shift));
      for (int v = 0; v < kVectors; ++v) dot[i][v] = start;
    }
#pragma GCC unroll 8
    for (int t = 0; t < 8; ++t) {
      __m512i wv[kVectors];
      for (int v = 0; v < kVectors; ++v) wv[v] = _mm512_load_si512(wp + (t * kVectors + v) * 64);
      const size_t off = b * kBlockBytes + (t % 4) * 4;
      for (int i = 0; i < MR; ++i) {
        const __m512i av = _mm512_set1_epi32(quad_at((t < 4 ? qe[i] : qo[i]) + off));
        for (int v = 0; v < kVectors; ++v) dot[i][v] = _mm512_dpbusd_epi32(dot[i][v], wv[v], av);
      }
    }
    for (int i = 0; i < MR; ++i) {
      const __m512 sa = _mm512_set1_ps(ls[i][b * 4]);
      for (int v = 0; v < kVectors; ++v) {
        const __m512 block = _mm512_mul_ps(_mm512_cvtepi32_ps(dot[i][v]), sa);
        acc[i][v] = _mm512_fmadd_ps(_mm512_load_ps(sp + v * 16), block, acc[i][v]);
      }
    }
  }
  for (int i = 0; i < MR; ++i) {
    float* row = y + (m0 + i) * ldy;
    for (int v = 0; v < kVectors; ++v) {
      if (masks[v] == 0) continue;
      __m512 out = acc[i][v];
      if (!first) out = _mm512_add_ps(out, _mm512_maskz_loadu_ps(masks[v], row + 16 * v));
      _mm512_mask_storeu_ps(row + 16 * v, masks[v], out);
    }
  }
}

// The task's panels: every kColumns columns of [n0, n1), over the slab's rows, a K chunk at a time.
template <int Bits>
void panel(const Q8Rows& a, size_t m0, size_t rows, const Int4Weights& w, size_t n0, size_t n1, float* y, size_t ldy) {
  constexpr int kShift = Bits == 4 ? 0 : 4;
  // the packed chunk lives on this task's stack: no allocation, so nothing can throw inside onnxruntime's
  // thread pool
  alignas(64) uint8_t wp[kChunk * kBlockPack];
  alignas(64) float sp[kChunk * kScalePack];
  // chunk-major: a chunk of the slab's activations stays in L2 while every panel of the task passes over it
  for (size_t c0 = 0; c0 < w.nb; c0 += kChunk) {
    const size_t c1 = c0 + kChunk < w.nb ? c0 + kChunk : w.nb;
    for (size_t n = n0; n < n1; n += kColumns) {
      __mmask16 masks[kVectors];
      for (int v = 0; v < kVectors; ++v) {
        const size_t first = n + 16 * v;
        const size_t cols = first >= n1 ? 0 : (n1 - first < 16 ? n1 - first : 16);
        masks[v] = static_cast<__mmask16>((1u << cols) - 1);
      }
      pack<Bits>(w, n, n1, c0, c1, wp, sp);
      size_t m = m0;
      for (; m + kRows <= m0 + rows; m += kRows) {
        micro<kRows, kShift>(a, m, wp, sp, c0, c1, y + n, ldy, masks, c0 == 0);
      }
      if (m < m0 + rows) {
        with_rows(m0 + rows - m, [&](auto mr) {
          micro<decltype(mr)::value, kShift>(a, m, wp, sp, c0, c1, y + n, ldy, masks, c0 == 0);
        });
      }
    }
  }
}

}  // namespace

void panel_avx512vnni(const Q8Rows& a, size_t m0, size_t rows, const Int4Weights& w, size_t n0, size_t n1, float* y,
                      size_t ldy) {
  panel<4>(a, m0, rows, w, n0, n1, y, ldy);
}

void panel8_avx512vnni(const Q8Rows& a, size_t m0, size_t rows, const Int4Weights& w, size_t n0, size_t n1,
                       float* y, size_t ldy) {
  panel<8>(a, m0, rows, w, n0, n1, y, ldy);
}

}  // namespace edge_kernels
