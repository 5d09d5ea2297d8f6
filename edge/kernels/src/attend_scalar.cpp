// The attention kernel (attend.h) for scalar.
// no target: the baseline x86-64 (SSE2) the package is built for
#pragma GCC optimize("fp-contract=fast")  // the vector multiply-adds become FMAs where the target has them
#define EDGE_VEC_LANES 4  // xmm registers
#include "attend.h"

namespace edge_kernels {

void attend_scalar(const AttentionArgs& a, const Parallel& parallel) { attend(a, parallel); }

void narrow_scalar(const float* from, uint16_t* to, size_t n) { narrow(from, to, n); }

}  // namespace edge_kernels
