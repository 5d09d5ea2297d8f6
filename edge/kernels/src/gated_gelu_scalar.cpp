// The GatedGelu kernel (gated_gelu_impl.h) for scalar.
// no target: the baseline x86-64 (SSE2) the package is built for
#pragma GCC optimize("fp-contract=fast")  // the vector multiply-adds become FMAs where the target has them
#define EDGE_VEC_LANES 4  // xmm registers
#include "gated_gelu_impl.h"

namespace edge_kernels {

void gated_gelu_scalar(const GatedArgs& a, const Parallel& parallel) { gated_gelu(a, parallel); }

}  // namespace edge_kernels
