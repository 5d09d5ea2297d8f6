// The onnxruntime custom op edge.kernels::MatMulInt4 and the library's two entry points (the domain also
// holds GroupAttention, attention_op.cpp, MatMulInt8, int8_op.cpp, GatedGelu, gated_gelu_op.cpp, and the
// benchmark's ReadBytes, read_op.cpp).
//
// MatMulInt4 takes exactly the inputs and attributes of a com.microsoft MatMulNBits node with bits 4,
// block_size 32 and no zero points (A, B, scales; K, N), so the runtime swaps one op type for the other at
// load and the weights are used in place. The attribute "isa" names the micro-kernel (see dispatch.h).
//
// Built against onnxruntime 1.21's headers (C API 21) and loaded into newer onnxruntime releases through
// SessionOptions.register_custom_ops_library: ORT_API_MANUAL_INIT makes the C++ wrappers use the API table
// that the loading onnxruntime hands over in RegisterCustomOps.
#define ORT_API_MANUAL_INIT
#include "onnxruntime_cxx_api.h"
#undef ORT_API_MANUAL_INIT
#include "onnxruntime_lite_custom_op.h"

#include <atomic>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "weight_op.h"

namespace edge_kernels {
namespace {

constexpr const char* kDomain = "edge.kernels";

// MatMulNBits' 4-bit layout (int4.h): decode (M <= kMaxRows) on the GEMV, prefill on the packed-panel GEMM.
struct Int4Layout {
  static constexpr const char* kName = "MatMulInt4";
  static constexpr int64_t kBits = 4;
  static constexpr size_t kBlockBytes = edge_kernels::kBlockBytes;
  static void run(const Isa& isa, const float* a, size_t m, size_t k, size_t n, size_t nb, const uint8_t* b,
                  const float* scales, float* y, const Parallel& parallel) {
    const Int4Weights w{b, scales, n, k, nb};
    if (m <= kMaxRows) {
      gemv(a, m, w, y, isa.stream, parallel);
    } else {
      gemm(a, m, w, y, isa.panel, parallel);
    }
  }
};

using MatMulInt4 = WeightMatMul<Int4Layout>;

}  // namespace

void ort_parallel(const void* self, void (*fn)(void*, size_t), size_t total, void* data) {
  static_cast<const Ort::KernelContext*>(self)->ParallelFor(fn, total, 0, data);
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

Ort::Status set_output_shape(Ort::ShapeInferContext& ctx, size_t index, Ort::ShapeInferContext::Shape shape) {
  // an unnamed dynamic dimension arrives as -1; returned as -1 it would read as a fixed size, so it gets a
  // fresh symbol of its own (which never unifies with another dimension)
  static std::atomic<uint64_t> fresh{0};
  std::vector<std::string> names;
  names.reserve(shape.size());
  for (auto& dim : shape) {
    if (dim.IsInt() && dim.AsInt() < 0) {
      names.push_back("edge_kernels_dim_" + std::to_string(fresh++));
      dim = Ort::ShapeInferContext::SymbolicInteger(names.back().c_str());
    }
  }
  return ctx.SetOutputShape(index, shape);
}

}  // namespace edge_kernels

extern "C" {

// Called by onnxruntime (SessionOptions.register_custom_ops_library).
__attribute__((visibility("default"))) OrtStatus* ORT_API_CALL RegisterCustomOps(OrtSessionOptions* options,
                                                                                 const OrtApiBase* api_base) {
  Ort::InitApi(api_base->GetApi(ORT_API_VERSION));
  try {
    static Ort::CustomOpDomain domain{edge_kernels::kDomain};
    static std::unique_ptr<Ort::Custom::OrtLiteCustomOp> op{
        Ort::Custom::CreateLiteCustomOp<edge_kernels::MatMulInt4>("MatMulInt4", "CPUExecutionProvider")};
    static bool added = false;
    if (!added) {
      domain.Add(op.get());
      domain.Add(edge_kernels::group_attention_op());
      domain.Add(edge_kernels::group_attention_f16_op());
      domain.Add(edge_kernels::matmul_int8_op());
      domain.Add(edge_kernels::gated_gelu_op());
      domain.Add(edge_kernels::read_bytes_op());
      added = true;
    }
    Ort::UnownedSessionOptions(options).Add(domain);
  } catch (const std::exception& exc) {
    return Ort::Status(exc).release();
  }
  return nullptr;
}

// For the Python side (ctypes, no onnxruntime involved): the path `requested` resolves to on this CPU
// ("auto" → the best one). Writes the path's name, or why it cannot run, into out; returns 0 if it can run.
__attribute__((visibility("default"))) int edge_kernels_resolve(const char* requested, char* out, size_t size) {
  edge_kernels::Isa isa{};
  std::string error;
  const bool ok = edge_kernels::select_isa(requested, &isa, &error);
  const std::string text = ok ? isa.name : error;
  if (size > 0) {
    std::strncpy(out, text.c_str(), size - 1);
    out[size - 1] = '\0';
  }
  return ok ? 0 : 1;
}

}  // extern "C"
