// The attention kernel (attend.h) for avx2.
#pragma GCC target("avx2,fma,f16c")
#pragma GCC optimize("fp-contract=fast")  // the vector multiply-adds become FMAs where the target has them
#define EDGE_VEC_LANES 8  // ymm registers
#include "attend.h"

namespace edge_kernels {

void attend_avx2(const AttentionArgs& a, const Parallel& parallel) { attend(a, parallel); }

void narrow_avx2(const float* from, uint16_t* to, size_t n) { narrow(from, to, n); }

}  // namespace edge_kernels
