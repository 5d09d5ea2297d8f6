// The GatedGelu kernel (gated_gelu_impl.h) for avx512.
#pragma GCC target("avx512f,avx512bw,avx512vl,fma")
#pragma GCC optimize("fp-contract=fast")  // the vector multiply-adds become FMAs where the target has them
#define EDGE_VEC_LANES 16  // zmm registers
#include "gated_gelu_impl.h"

namespace edge_kernels {

void gated_gelu_avx512(const GatedArgs& a, const Parallel& parallel) { gated_gelu(a, parallel); }

}  // namespace edge_kernels
