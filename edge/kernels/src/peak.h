// The machine's int8 dot-product peak: the instruction each GEMM path is built on, issued back to back on
// independent accumulators with operands in registers, so nothing but its own throughput bounds it. The prefill
// GEMM's GFLOP/s is read against it (edge bench --kernels), as the GEMV's bytes/s are read against the memory
// bandwidth; and the 12B image prompt's arithmetic sets a floor under its time to first token (edge bench
// --preset 12b).
#pragma once

#include <cstdint>

namespace edge_kernels {

// Runs `rounds` rounds of kPeakChains independent dot-product instructions; returns the multiply-adds done.
using PeakFn = uint64_t (*)(uint64_t rounds);

constexpr int kPeakChains = 16;  // enough in flight for 2 per cycle at a latency of 5 (Intel) or 4 (AMD)

uint64_t peak_avx512vnni(uint64_t rounds);  // vpdpbusd on zmm: 64 u8 × s8 products a instruction
uint64_t peak_avxvnni(uint64_t rounds);     // vpdpbusd on ymm (VEX): 32
uint64_t peak_avx2(uint64_t rounds);        // vpmaddubsw on ymm: 32, summed in pairs (the AVX2 GEMM adds more)

}  // namespace edge_kernels
