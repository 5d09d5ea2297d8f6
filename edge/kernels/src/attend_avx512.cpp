// The attention kernel (attend.h) for avx512.
#pragma GCC target("avx512f,avx512bw,avx512vl,fma")
#pragma GCC optimize("fp-contract=fast")  // the vector multiply-adds become FMAs where the target has them
#define EDGE_VEC_LANES 16  // zmm registers
#include "attend.h"

namespace edge_kernels {

void attend_avx512(const AttentionArgs& a, const Parallel& parallel) { attend(a, parallel); }

void narrow_avx512(const float* from, uint16_t* to, size_t n) { narrow(from, to, n); }

}  // namespace edge_kernels
