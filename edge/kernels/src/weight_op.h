// The two weight-matmul custom ops, MatMulInt4 (op.cpp) and MatMulInt8 (int8_op.cpp), as one template: both take a
// com.microsoft MatMulNBits node's inputs and attributes (A, B, scales; K, N, bits, block_size, and "isa", the
// path: dispatch.h) and read B and scales in place. Layout supplies the name, the bits, the bytes per 32-element
// block, and run(isa, a, m, k, n, nb, b, scales, y, parallel). Include after onnxruntime's C++ headers.
#pragma once

#include <string>
#include <vector>

#include "dispatch.h"
#include "matmul.h"
#include "op.h"

namespace edge_kernels {
namespace {

template <typename Layout>
struct WeightMatMul {
  WeightMatMul(const OrtApi*, const OrtKernelInfo* info) {
    // onnxruntime's CreateKernel cannot report an error: keep it and fail the first Compute with it
    try {
      Ort::ConstKernelInfo ki(info);
      k_ = ki.GetAttribute<int64_t>("K");
      n_ = ki.GetAttribute<int64_t>("N");
      const int64_t bits = ki.GetAttribute<int64_t>("bits");
      const int64_t block = ki.GetAttribute<int64_t>("block_size");
      if (bits != Layout::kBits || block != static_cast<int64_t>(kBlock) || k_ < 1 || n_ < 1) {
        error_ = std::string(Layout::kName) + " takes bits " + std::to_string(Layout::kBits) +
                 ", block_size 32 and positive K, N; got bits " + std::to_string(bits) + ", block_size " +
                 std::to_string(block);
        return;
      }
      const std::string isa = attribute_or<std::string>(ki, "isa", "auto");
      select_isa(isa.c_str(), &isa_, &error_);
    } catch (const std::exception& exc) {
      error_ = std::string(Layout::kName) + ": " + exc.what();
    }
  }

  Ort::Status Compute(OrtKernelContext* context, const Ort::Custom::Tensor<float>& a,
                      const Ort::Custom::Tensor<uint8_t>& b, const Ort::Custom::Tensor<float>& scales,
                      Ort::Custom::Tensor<float>& y) {
    if (!error_.empty()) return Ort::Status(error_.c_str(), ORT_INVALID_ARGUMENT);
    const std::string name = Layout::kName;
    try {
      const std::vector<int64_t>& shape = a.Shape();
      const size_t k = static_cast<size_t>(k_), n = static_cast<size_t>(n_), nb = (k + kBlock - 1) / kBlock;
      if (shape.empty() || shape.back() != k_) {
        return Ort::Status((name + ": A's last dimension must be K = " + std::to_string(k_)).c_str(),
                           ORT_INVALID_ARGUMENT);
      }
      if (static_cast<size_t>(b.NumberOfElement()) != n * nb * Layout::kBlockBytes ||
          static_cast<size_t>(scales.NumberOfElement()) != n * nb) {
        return Ort::Status((name + ": B must hold N × ceil(K / 32) × " + std::to_string(Layout::kBlockBytes) +
                            " bytes and scales N × ceil(K / 32)")
                               .c_str(),
                           ORT_INVALID_ARGUMENT);
      }
      std::vector<int64_t> out(shape);
      out.back() = n_;
      const size_t m = static_cast<size_t>(a.NumberOfElement()) / k;
      float* dst = y.Allocate(out);
      if (m == 0) return Ort::Status{nullptr};
      Ort::KernelContext ctx(context);
      Layout::run(isa_, a.Data(), m, k, n, nb, b.Data(), scales.Data(), dst, Parallel{ort_parallel, &ctx});
      return Ort::Status{nullptr};
    } catch (const std::exception& exc) {
      return Ort::Status((name + ": " + exc.what()).c_str(), ORT_FAIL);
    }
  }

  static Ort::Status InferOutputShape(Ort::ShapeInferContext& ctx) {
    Ort::ShapeInferContext::Shape shape = ctx.GetInputShape(0);
    if (shape.empty()) {
      return Ort::Status((std::string(Layout::kName) + ": A must have at least one dimension").c_str(),
                         ORT_INVALID_ARGUMENT);
    }
    shape.back() = Ort::ShapeInferContext::SymbolicInteger(ctx.GetAttrInt("N"));
    return set_output_shape(ctx, 0, shape);
  }

  int64_t k_ = 0, n_ = 0;
  Isa isa_{};
  std::string error_;
};

}  // namespace
}  // namespace edge_kernels
