// The onnxruntime custom op edge.kernels::MatMulInt4 and the library's two entry points (the domain also
// holds GroupAttention, attention_op.cpp, and MatMulInt8, int8_op.cpp).
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

#include "dispatch.h"
#include "matmul.h"
#include "op.h"

namespace edge_kernels {
namespace {

constexpr const char* kDomain = "edge.kernels";

struct MatMulInt4 {
  MatMulInt4(const OrtApi*, const OrtKernelInfo* info) {
    // onnxruntime's CreateKernel cannot report an error: keep it and fail the first Compute with it
    try {
      Ort::ConstKernelInfo ki(info);
      k_ = ki.GetAttribute<int64_t>("K");
      n_ = ki.GetAttribute<int64_t>("N");
      const int64_t bits = ki.GetAttribute<int64_t>("bits");
      const int64_t block = ki.GetAttribute<int64_t>("block_size");
      if (bits != 4 || block != static_cast<int64_t>(kBlock) || k_ < 1 || n_ < 1) {
        error_ = "MatMulInt4 takes bits 4, block_size 32 and positive K, N; got bits " + std::to_string(bits) +
                 ", block_size " + std::to_string(block);
        return;
      }
      const std::string isa = attribute_or<std::string>(ki, "isa", "auto");
      if (!select_isa(isa.c_str(), &isa_, &error_)) return;
    } catch (const std::exception& exc) {
      error_ = std::string("MatMulInt4: ") + exc.what();
    }
  }

  Ort::Status Compute(OrtKernelContext* context, const Ort::Custom::Tensor<float>& a,
                      const Ort::Custom::Tensor<uint8_t>& b, const Ort::Custom::Tensor<float>& scales,
                      Ort::Custom::Tensor<float>& y) {
    if (!error_.empty()) return Ort::Status(error_.c_str(), ORT_INVALID_ARGUMENT);
    try {
      const std::vector<int64_t>& shape = a.Shape();
      const size_t k = static_cast<size_t>(k_), n = static_cast<size_t>(n_);
      const size_t nb = (k + kBlock - 1) / kBlock;
      if (shape.empty() || shape.back() != k_) {
        return Ort::Status(("MatMulInt4: A's last dimension must be K = " + std::to_string(k_)).c_str(),
                           ORT_INVALID_ARGUMENT);
      }
      if (static_cast<size_t>(b.NumberOfElement()) != n * nb * kBlockBytes ||
          static_cast<size_t>(scales.NumberOfElement()) != n * nb) {
        return Ort::Status("MatMulInt4: B must hold N × ceil(K / 32) × 16 bytes and scales N × ceil(K / 32)",
                           ORT_INVALID_ARGUMENT);
      }
      std::vector<int64_t> out(shape);
      out.back() = n_;
      const size_t m = static_cast<size_t>(a.NumberOfElement()) / k;
      float* dst = y.Allocate(out);
      if (m == 0) return Ort::Status{nullptr};
      const Int4Weights w{b.Data(), scales.Data(), n, k, nb};
      Ort::KernelContext ctx(context);
      const Parallel parallel{ort_parallel, &ctx};
      if (m <= kMaxRows) {
        gemv(a.Data(), m, w, dst, isa_.stream, parallel);
      } else {
        gemm(a.Data(), m, w, dst, isa_.panel, parallel);
      }
      return Ort::Status{nullptr};
    } catch (const std::exception& exc) {
      return Ort::Status((std::string("MatMulInt4: ") + exc.what()).c_str(), ORT_FAIL);
    }
  }

  static Ort::Status InferOutputShape(Ort::ShapeInferContext& ctx) {
    Ort::ShapeInferContext::Shape shape = ctx.GetInputShape(0);
    if (shape.empty()) return Ort::Status("MatMulInt4: A must have at least one dimension", ORT_INVALID_ARGUMENT);
    shape.back() = Ort::ShapeInferContext::SymbolicInteger(ctx.GetAttrInt("N"));
    return set_output_shape(ctx, 0, shape);
  }

  int64_t k_ = 0, n_ = 0;
  Isa isa_{};
  std::string error_;
};

}  // namespace

void ort_parallel(const void* self, void (*fn)(void*, size_t), size_t total, void* data) {
  static_cast<const Ort::KernelContext*>(self)->ParallelFor(fn, total, 0, data);
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
      domain.Add(edge_kernels::matmul_int8_op());
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
