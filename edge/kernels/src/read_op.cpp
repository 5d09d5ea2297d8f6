// The onnxruntime custom op edge.kernels::ReadBytes, for `edge bench --kernels` only: it reads a weight's bytes
// (B) and its scales once, as the decode GEMV streams them, and returns the XOR of all their 8-byte words (each
// tensor's last partial word zero-padded), so no compiler or runtime can skip a load. Run in the same session
// type, on the same bytes and the same intra-op pool as MatMulInt4, it is the read rate the GEMV is compared
// with: the same statistic, in the same turns, where a separate bandwidth probe is a best-of reading of other
// bytes minutes away. Chunks of 32 KiB (the GEMV's 48 columns at K = 1536 are 36 KiB) go to the pool; each
// reads the widest words of the kernel path (attribute "isa", as MatMulInt4's: 512-bit words on AVX-512,
// 256-bit on AVX-VNNI and AVX2, 64-bit on the portable path) with 4 loads in flight and the GEMV's prefetches.
#define ORT_API_MANUAL_INIT
#include "onnxruntime_cxx_api.h"
#undef ORT_API_MANUAL_INIT
#include "onnxruntime_lite_custom_op.h"

#include <immintrin.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "dispatch.h"
#include "matmul.h"
#include "op.h"

namespace edge_kernels {
namespace {

constexpr size_t kChunk = 32768;  // bytes of B per task (a multiple of 64: every chunk starts word-aligned)

// The GEMV's software prefetches (int4.h): each 64-byte line kStreamAhead bytes on into L1 and kStreamFar bytes on
// into L2, so that the read is the best this access pattern gets, never a slower one.
inline void prefetch(const uint8_t* p, size_t bytes) {
  for (size_t j = 0; j < bytes; j += 64) {
    _mm_prefetch(reinterpret_cast<const char*>(p + j + kStreamAhead), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(p + j + kStreamFar), _MM_HINT_T1);
  }
}

// The XOR of the whole 8-byte words of p[0, bytes): the portable path, and the vector paths' tail.
uint64_t xor_scalar(const uint8_t* p, size_t bytes) {
  uint64_t out = 0;
  for (size_t i = 0; i + 8 <= bytes; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    out ^= w;
  }
  return out;
}

__attribute__((target("avx512f"))) uint64_t xor_avx512(const uint8_t* p, size_t bytes) {
  __m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;
  size_t i = 0;
  for (; i + 256 <= bytes; i += 256) {
    prefetch(p + i, 256);
    a = _mm512_xor_si512(a, _mm512_loadu_si512(p + i));
    b = _mm512_xor_si512(b, _mm512_loadu_si512(p + i + 64));
    c = _mm512_xor_si512(c, _mm512_loadu_si512(p + i + 128));
    d = _mm512_xor_si512(d, _mm512_loadu_si512(p + i + 192));
  }
  alignas(64) uint64_t lanes[8];
  _mm512_store_si512(lanes, _mm512_xor_si512(_mm512_xor_si512(a, b), _mm512_xor_si512(c, d)));
  uint64_t out = 0;
  for (uint64_t lane : lanes) out ^= lane;
  return out ^ xor_scalar(p + i, bytes - i);
}

__attribute__((target("avx2"))) uint64_t xor_avx2(const uint8_t* p, size_t bytes) {
  __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
  size_t i = 0;
  for (; i + 128 <= bytes; i += 128) {
    prefetch(p + i, 128);
    a = _mm256_xor_si256(a, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)));
    b = _mm256_xor_si256(b, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    c = _mm256_xor_si256(c, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    d = _mm256_xor_si256(d, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), _mm256_xor_si256(_mm256_xor_si256(a, b), _mm256_xor_si256(c, d)));
  return lanes[0] ^ lanes[1] ^ lanes[2] ^ lanes[3] ^ xor_scalar(p + i, bytes - i);
}

using XorFn = uint64_t (*)(const uint8_t*, size_t);

// The read loop of a kernel path: its widest loads.
XorFn xor_for(const Isa& isa) {
  if (std::strcmp(isa.name, "avx512vnni") == 0) return xor_avx512;
  if (std::strcmp(isa.name, "scalar") == 0) return xor_scalar;
  return xor_avx2;  // avxvnni, avx2
}

// The XOR of the words of p[0, bytes), the last partial word zero-padded (p starts word-aligned in its tensor).
uint64_t xor_words(XorFn fn, const uint8_t* p, size_t bytes) {
  uint64_t out = fn(p, bytes);
  const size_t tail = bytes % 8;
  if (tail) {
    uint64_t w = 0;
    std::memcpy(&w, p + bytes - tail, tail);
    out ^= w;
  }
  return out;
}

struct Job {
  XorFn fn;
  const uint8_t* b;
  size_t b_bytes;
  const uint8_t* s;
  size_t s_bytes;
  size_t chunks;
  uint64_t* out;  // one word per chunk
};

// Chunk i: 32 KiB of B, and the matching share of the scales (cut at multiples of 64 bytes).
void read_chunk(void* data, size_t i) {
  const Job& job = *static_cast<const Job*>(data);
  const size_t b0 = i * kChunk, b1 = b0 + kChunk < job.b_bytes ? b0 + kChunk : job.b_bytes;
  const size_t s0 = job.s_bytes * i / job.chunks / 64 * 64;
  const size_t s1 = i + 1 == job.chunks ? job.s_bytes : job.s_bytes * (i + 1) / job.chunks / 64 * 64;
  job.out[i] = xor_words(job.fn, job.b + b0, b1 - b0) ^ xor_words(job.fn, job.s + s0, s1 - s0);
}

struct ReadBytes {
  ReadBytes(const OrtApi*, const OrtKernelInfo* info) {
    try {
      const std::string isa = attribute_or<std::string>(Ort::ConstKernelInfo(info), "isa", "auto");
      Isa chosen{};
      if (select_isa(isa.c_str(), &chosen, &error_)) fn_ = xor_for(chosen);
    } catch (const std::exception& exc) {
      error_ = std::string("ReadBytes: ") + exc.what();
    }
  }

  Ort::Status Compute(OrtKernelContext* context, const Ort::Custom::Tensor<uint8_t>& b,
                      const Ort::Custom::Tensor<float>& scales, Ort::Custom::Tensor<int64_t>& y) {
    if (!error_.empty()) return Ort::Status(error_.c_str(), ORT_INVALID_ARGUMENT);
    try {
      const size_t b_bytes = static_cast<size_t>(b.NumberOfElement());
      const size_t s_bytes = static_cast<size_t>(scales.NumberOfElement()) * sizeof(float);
      const size_t chunks = b_bytes ? (b_bytes + kChunk - 1) / kChunk : 1;
      std::vector<uint64_t> words(chunks, 0);
      Job job{fn_, b.Data(), b_bytes, reinterpret_cast<const uint8_t*>(scales.Data()), s_bytes, chunks, words.data()};
      Ort::KernelContext ctx(context);
      Parallel{ort_parallel, &ctx}(read_chunk, chunks, &job);
      uint64_t out = 0;
      for (uint64_t w : words) out ^= w;
      int64_t* dst = y.Allocate({1});
      std::memcpy(dst, &out, sizeof(out));
      return Ort::Status{nullptr};
    } catch (const std::exception& exc) {
      return Ort::Status((std::string("ReadBytes: ") + exc.what()).c_str(), ORT_FAIL);
    }
  }

  static Ort::Status InferOutputShape(Ort::ShapeInferContext& ctx) {
    return ctx.SetOutputShape(0, Ort::ShapeInferContext::Shape{Ort::ShapeInferContext::SymbolicInteger(int64_t{1})});
  }

  XorFn fn_ = nullptr;
  std::string error_;
};

}  // namespace

Ort::Custom::OrtLiteCustomOp* read_bytes_op() {
  static std::unique_ptr<Ort::Custom::OrtLiteCustomOp> op{
      Ort::Custom::CreateLiteCustomOp<ReadBytes>("ReadBytes", "CPUExecutionProvider")};
  return op.get();
}

}  // namespace edge_kernels
