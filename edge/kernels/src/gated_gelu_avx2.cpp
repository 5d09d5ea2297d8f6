// The GatedGelu kernel (gated_gelu_impl.h) for avx2.
#pragma GCC target("avx2,fma")
#pragma GCC optimize("fp-contract=fast")  // the vector multiply-adds become FMAs where the target has them
#define EDGE_VEC_LANES 8  // ymm registers
#include "gated_gelu_impl.h"

namespace edge_kernels {

void gated_gelu_avx2(const GatedArgs& a, const Parallel& parallel) { gated_gelu(a, parallel); }

}  // namespace edge_kernels
