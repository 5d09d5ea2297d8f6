// CPU dispatch: CPUID (through the compiler's cpu model, which also checks that the OS saves the vector state)
// picks the widest micro-kernel; EDGE_KERNELS forces one, so tests run every path on one machine.
#include "dispatch.h"

#include <cstring>

namespace edge_kernels {
namespace {

bool has_avx512vnni() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}

// F16C (every AVX2 CPU has it) converts a half KV cache's rows
bool has_avx2() {
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}

// VEX-encoded vpdpbusd on ymm (CPUID leaf 7, subleaf 1, EAX bit 4): Alder Lake and later, without AVX-512
bool has_avxvnni() { return has_avx2() && __builtin_cpu_supports("avxvnni"); }

const Isa kPaths[] = {
    {"avx512vnni", panel_avx512vnni, stream_avx512vnni, attend_avx512, narrow_avx512, int8_avx2, panel8_avx512vnni,
     gated_gelu_avx512},
    {"avxvnni", panel_avxvnni, stream_avxvnni, attend_avx2, narrow_avx2, int8_avx2, nullptr, gated_gelu_avx2},
    {"avx2", panel_avx2, stream_avx2, attend_avx2, narrow_avx2, int8_avx2, nullptr, gated_gelu_avx2},
    // plain loops, any rows: one kernel serves as both GEMV and GEMM
    {"scalar", tile_scalar, tile_scalar, attend_scalar, narrow_scalar, int8_scalar, nullptr, gated_gelu_scalar},
};

bool supported(const Isa& isa) {
  if (std::strcmp(isa.name, "avx512vnni") == 0) return has_avx512vnni();
  if (std::strcmp(isa.name, "avxvnni") == 0) return has_avxvnni();
  if (std::strcmp(isa.name, "avx2") == 0) return has_avx2();
  return true;
}

}  // namespace

bool select_isa(const char* env, Isa* out, std::string* error) {
  __builtin_cpu_init();
  if (env == nullptr || *env == '\0' || std::strcmp(env, "auto") == 0) {
    for (const Isa& isa : kPaths) {
      if (supported(isa)) {
        *out = isa;
        return true;
      }
    }
  }
  for (const Isa& isa : kPaths) {
    if (std::strcmp(env, isa.name) != 0) continue;
    if (!supported(isa)) {
      *error = std::string("EDGE_KERNELS=") + env + ": this CPU cannot run that path; unset it or choose auto";
      return false;
    }
    *out = isa;
    return true;
  }
  *error = std::string("EDGE_KERNELS=") + env +
           ": unknown kernel path; choose auto, avx512vnni, avxvnni, avx2, scalar or off";
  return false;
}

}  // namespace edge_kernels
