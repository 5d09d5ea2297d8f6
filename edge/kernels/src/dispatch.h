// Which micro-kernel runs: chosen once per kernel instance from CPUID, or forced with EDGE_KERNELS.
#pragma once

#include <string>

#include "attention.h"
#include "gated_gelu.h"
#include "int4.h"
#include "int8.h"

namespace edge_kernels {

struct Isa {
  const char* name;  // "avx512vnni", "avxvnni", "avx2" or "scalar"
  PanelFn panel;  // the GEMM kernel (prefill)
  TileFn stream;  // the GEMV micro-kernel (decode, M <= kMaxRows)
  AttendFn attend;  // GroupAttention (fp32: AVX-VNNI parts run the AVX2 build)
  NarrowFn narrow;  // fp32 → binary16 for GroupAttentionF16's cache
  Int8Fn int8;      // MatMulInt8 at M <= kMaxRows, and at any M where panel8 is null
  PanelFn panel8;   // MatMulInt8 above kMaxRows rows (prefill), or null: the GEMV for every M
  GatedFn gated;    // GatedGelu (fp32, as the attention)
};

// EDGE_KERNELS unset, "" or "auto": the best path this CPU supports, in the order below. "avx512vnni",
// "avxvnni", "avx2" or "scalar": that path, or an error message in *error if the CPU cannot run it or the value
// is unknown (returns false).
bool select_isa(const char* env, Isa* out, std::string* error);

}  // namespace edge_kernels
