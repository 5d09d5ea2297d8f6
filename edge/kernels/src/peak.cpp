// The int8 dot-product peak (peak.h) and its C entry point for the Python side (ctypes): each thread runs the
// path's loop for a fixed time on its own accumulators; the figure is the sum of the threads' rates.
#include "peak.h"

// GCC 12's own intrinsics (reduce_add) read intentionally undefined registers: not ours to fix
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include <immintrin.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "dispatch.h"

namespace edge_kernels {

// The operands go through an empty asm each round so the compiler cannot hoist or fold the products; the
// accumulators are reduced at the end so none of the work is dead.
__attribute__((target("avx512f,avx512bw,avx512vnni"))) uint64_t peak_avx512vnni(uint64_t rounds) {
  __m512i w = _mm512_set1_epi8(3), a = _mm512_set1_epi8(-2);
  __m512i acc[kPeakChains];
  for (int j = 0; j < kPeakChains; ++j) acc[j] = _mm512_set1_epi32(j);
  for (uint64_t r = 0; r < rounds; ++r) {
#pragma GCC unroll 16
    for (int j = 0; j < kPeakChains; ++j) acc[j] = _mm512_dpbusd_epi32(acc[j], w, a);
    __asm__ volatile("" : "+v"(w), "+v"(a));
  }
  __m512i sum = acc[0];
  for (int j = 1; j < kPeakChains; ++j) sum = _mm512_add_epi32(sum, acc[j]);
  volatile int sink = _mm512_reduce_add_epi32(sum);
  (void)sink;
  return rounds * kPeakChains * 64;
}

__attribute__((target("avx2,avxvnni"))) uint64_t peak_avxvnni(uint64_t rounds) {
  __m256i w = _mm256_set1_epi8(3), a = _mm256_set1_epi8(-2);
  __m256i acc[kPeakChains];
  for (int j = 0; j < kPeakChains; ++j) acc[j] = _mm256_set1_epi32(j);
  for (uint64_t r = 0; r < rounds; ++r) {
#pragma GCC unroll 16
    for (int j = 0; j < kPeakChains; ++j) acc[j] = _mm256_dpbusd_avx_epi32(acc[j], w, a);
    __asm__ volatile("" : "+x"(w), "+x"(a));
  }
  __m256i sum = acc[0];
  for (int j = 1; j < kPeakChains; ++j) sum = _mm256_add_epi32(sum, acc[j]);
  volatile int sink = _mm256_extract_epi32(sum, 0);
  (void)sink;
  return rounds * kPeakChains * 32;
}

// vpmaddubsw has no accumulator: each chain's products are folded into it with vpaddsw, the cheapest form an
// AVX2 int8 kernel can take (ours adds 8 quads' int16 sums, then one vpmaddwd per block)
__attribute__((target("avx2"))) uint64_t peak_avx2(uint64_t rounds) {
  __m256i w = _mm256_set1_epi8(3), a = _mm256_set1_epi8(-2);
  __m256i acc[kPeakChains];
  for (int j = 0; j < kPeakChains; ++j) acc[j] = _mm256_set1_epi16(static_cast<short>(j));
  for (uint64_t r = 0; r < rounds; ++r) {
#pragma GCC unroll 16
    for (int j = 0; j < kPeakChains; ++j) acc[j] = _mm256_adds_epi16(acc[j], _mm256_maddubs_epi16(w, a));
    __asm__ volatile("" : "+x"(w), "+x"(a));
  }
  __m256i sum = acc[0];
  for (int j = 1; j < kPeakChains; ++j) sum = _mm256_adds_epi16(sum, acc[j]);
  volatile int sink = _mm256_extract_epi16(sum, 0);
  (void)sink;
  return rounds * kPeakChains * 32;
}

namespace {

constexpr uint64_t kRoundsPerCall = 1 << 16;  // about a millisecond: the clock is read between calls

PeakFn peak_for(const char* name) {
  if (std::strcmp(name, "avx512vnni") == 0) return peak_avx512vnni;
  if (std::strcmp(name, "avxvnni") == 0) return peak_avxvnni;
  if (std::strcmp(name, "avx2") == 0) return peak_avx2;
  return nullptr;  // the scalar path has no vector dot product to measure
}

double thread_rate(PeakFn fn, double seconds) {
  using clock = std::chrono::steady_clock;
  fn(kRoundsPerCall);  // warm-up: the vector units' power-up on the first wide instructions
  uint64_t macs = 0;
  const auto t0 = clock::now();
  double dt = 0;
  do {
    macs += fn(kRoundsPerCall);
    dt = std::chrono::duration<double>(clock::now() - t0).count();
  } while (dt < seconds);
  return static_cast<double>(macs) / dt;
}

}  // namespace

}  // namespace edge_kernels

extern "C" {

// For the Python side (ctypes): multiply-adds per second of the int8 dot product of the path `requested`
// resolves to (see edge_kernels_resolve), on `threads` threads at once for `seconds`. Returns the rate, or 0
// with the reason in out (a path this CPU cannot run; the scalar path, which has no vector dot product).
__attribute__((visibility("default"))) double edge_kernels_peak(const char* requested, int threads, double seconds,
                                                                char* out, size_t size) {
  edge_kernels::Isa isa{};
  std::string error;
  edge_kernels::PeakFn fn = nullptr;
  if (!edge_kernels::select_isa(requested, &isa, &error)) {
  } else if ((fn = edge_kernels::peak_for(isa.name)) == nullptr) {
    error = std::string("the ") + isa.name + " path has no vector int8 dot product to measure";
  } else if (threads < 1) {
    error = "threads must be at least 1";
  }
  if (fn == nullptr || threads < 1) {
    if (size > 0) {
      std::strncpy(out, error.c_str(), size - 1);
      out[size - 1] = '\0';
    }
    return 0.0;
  }
  std::vector<double> rates(static_cast<size_t>(threads));
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] { rates[static_cast<size_t>(t)] = edge_kernels::thread_rate(fn, seconds); });
  }
  for (auto& th : pool) th.join();
  double total = 0;
  for (double r : rates) total += r;
  if (size > 0) {
    std::strncpy(out, isa.name, size - 1);
    out[size - 1] = '\0';
  }
  return total;
}

}  // extern "C"
