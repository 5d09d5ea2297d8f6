// Shared types of the int4 kernels: MatMulNBits' weight bytes as stored, and activations quantized to int8 blocks.
//
// Weights (com.microsoft MatMulNBits, bits 4, block 32, symmetric, no zero points): for output column n and
// block b, 16 bytes at q[(n * nb + b) * 16]; byte j holds element 2j in its low nibble and 2j + 1 in its high
// nibble, unsigned 0..15 with an implicit zero point of 8; one fp32 scale at s[n * nb + b].
// W[n, k] = (nibble - 8) * scale.
//
// Activations are quantized per block of 32 to int8 (scale = max|x| / 127), as llama.cpp's Q8_0 blocks and
// MatMulNBits' accuracy level 4 do, and stored split to match the nibbles: the even elements of block b in
// qe[b * 16 ..], the odd ones in qo[b * 16 ..]. So the low nibbles of a 16-byte weight block multiply qe and
// the high nibbles qo, with no shuffle. Rows are padded with zero blocks to a multiple of 4 blocks (64 bytes),
// so the vector kernels never read past a row of activations.
//
// Per block the dot product is  sum((nib - 8) * a) = sum(nib * a) - 8 * sum(a); with the activation scale sa
// and the weight scale sw:  y += sw * (sa * sum(nib * a) - 8 * sa * sum(a)). The vector kernels keep 4 int32
// lanes per block, so the activation side is stored per lane: lane_scale = sa (4 copies) and
// lane_corr = -8 * sa * sum(a) / 4 (4 copies); a padding block has both 0. The GEMM kernels keep one int32
// lane per column instead and start each block's sum at zero_term = -8 * sum(a), exact in int32.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace edge_kernels {

constexpr size_t kBlock = 32;      // elements per block (the only block size these kernels take)
constexpr size_t kBlockBytes = 16;  // packed bytes per block
constexpr size_t kGroup = 4;       // blocks per 64-byte vector step; activation rows are padded to this
constexpr size_t kMaxRows = 4;     // activation rows per GEMV call (decode); more rows take the GEMM
// The GEMV micro-kernels read one column at a time, so a thread's weights (and scales) are one sequential
// stream; they prefetch it kStreamAhead bytes ahead into L1 and kStreamFar bytes ahead into L2. Measured at
// M = 1 on one Zen 4 core, MatMulNBits 15–19 GB/s in the same runs: 4 interleaved column streams 11–12 GB/s;
// one stream, L1 prefetch only, 15–18 (2–3 KiB ahead best; 6144 × 1536 at 0.85–0.95× MatMulNBits); adding
// the L2 prefetch 12 KiB ahead 17–21, 1.13–1.28× on every decoder shape. Prefetching the scales did not help.
constexpr size_t kStreamAhead = 3072;
constexpr size_t kStreamFar = 12288;

struct Int4Weights {
  const uint8_t* q;  // [N][nb][16]
  const float* s;    // [N][nb]
  size_t n;          // output columns (N)
  size_t k;          // input features (K)
  size_t nb;         // blocks per column: ceil(K / 32)
};

struct Q8Rows {
  int8_t* qe;          // [M][nbp][16] even elements
  int8_t* qo;          // [M][nbp][16] odd elements
  float* lane_scale;   // [M][nbp][4]
  float* lane_corr;    // [M][nbp][4]
  int32_t* zero_term;  // [M][nbp]: -8 * sum(a)
  size_t m;            // rows
  size_t nbp;          // blocks per row, padded to a multiple of kGroup
};

// Owns the buffers of a Q8Rows (64-byte aligned).
class Q8Buffer {
 public:
  Q8Buffer(size_t m, size_t nb);
  ~Q8Buffer();
  Q8Buffer(const Q8Buffer&) = delete;
  Q8Buffer& operator=(const Q8Buffer&) = delete;
  Q8Rows rows;

 private:
  void* mem_;
};

// Quantizes rows [r0, r1) of x ([M][K] fp32, row stride K) into a (quantize.cpp).
void quantize_rows(const float* x, size_t k, size_t r0, size_t r1, const Q8Rows& a);

// A GEMV micro-kernel (stream_*, decode): y[(m0 + i) * ldy + j] = sum_k a[m0 + i, k] * W[j, k] for i < rows
// (1..kMaxRows), j in [n0, n1); one column per pass, the weights streamed from memory in order.
using TileFn = void (*)(const Q8Rows& a, size_t m0, size_t rows, const Int4Weights& w, size_t n0, size_t n1,
                        float* y, size_t ldy);
// A GEMM kernel (panel_*, prefill): the same product for any number of rows; it widens the weights of
// [n0, n1) once per call into a per-call buffer (panel_avx512vnni.cpp describes the layout) and passes every
// row over it.
using PanelFn = TileFn;

// tile_scalar serves as both: plain loops over any rows and columns.
void tile_scalar(const Q8Rows&, size_t, size_t, const Int4Weights&, size_t, size_t, float*, size_t);
void panel_avx2(const Q8Rows&, size_t, size_t, const Int4Weights&, size_t, size_t, float*, size_t);
void stream_avx2(const Q8Rows&, size_t, size_t, const Int4Weights&, size_t, size_t, float*, size_t);
void panel_avxvnni(const Q8Rows&, size_t, size_t, const Int4Weights&, size_t, size_t, float*, size_t);
void stream_avxvnni(const Q8Rows&, size_t, size_t, const Int4Weights&, size_t, size_t, float*, size_t);
void panel_avx512vnni(const Q8Rows&, size_t, size_t, const Int4Weights&, size_t, size_t, float*, size_t);
// The same GEMM over int8 weights (int8.h's layout, 32 bytes per block, in an Int4Weights' fields): MatMulInt8's
// prefill (the vision and audio graphs)
void panel8_avx512vnni(const Q8Rows&, size_t, size_t, const Int4Weights&, size_t, size_t, float*, size_t);
void stream_avx512vnni(const Q8Rows&, size_t, size_t, const Int4Weights&, size_t, size_t, float*, size_t);

// The loops every micro-kernel shares. Internal linkage on purpose: each ISA file compiles them under its
// own #pragma GCC target, so one file's copy must never be linked into another's.
namespace {

// fn(std::integral_constant<int, MR>) for a row count of 1..4, so MR is a compile-time constant.
template <typename Fn>
inline void with_rows(size_t rows, Fn&& fn) {
  switch (rows) {
    case 1: fn(std::integral_constant<int, 1>{}); break;
    case 2: fn(std::integral_constant<int, 2>{}); break;
    case 3: fn(std::integral_constant<int, 3>{}); break;
    default: fn(std::integral_constant<int, 4>{}); break;
  }
}

// The 4 int8 activations at p as one dword, for a vpdpbusd (or vpmaddubsw) broadcast.
inline int32_t quad_at(const int8_t* p) {
  int32_t x;
  std::memcpy(&x, p, sizeof(x));
  return x;
}

}  // namespace

}  // namespace edge_kernels
