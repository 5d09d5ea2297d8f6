// The onnxruntime custom op edge.kernels::MatMulInt8: a com.microsoft MatMulNBits node with bits 8, block_size 32,
// accuracy level 4 and no zero points (A, B, scales; K, N), swapped at load like MatMulInt4 (edge/kernels/swap.py)
// and reading the same bytes in place (int8.h): no pre-packed copy, no block sums. The runtime swaps only the
// decoder's (its LM head, one row per decode step); the attribute "isa" names the path (dispatch.h).
#define ORT_API_MANUAL_INIT
#include "onnxruntime_cxx_api.h"
#undef ORT_API_MANUAL_INIT
#include "onnxruntime_lite_custom_op.h"

#include <memory>
#include <string>
#include <vector>

#include "dispatch.h"
#include "int8.h"
#include "op.h"

namespace edge_kernels {
namespace {

struct MatMulInt8 {
  MatMulInt8(const OrtApi*, const OrtKernelInfo* info) {
    try {  // CreateKernel cannot report an error: kept for the first Compute
      Ort::ConstKernelInfo ki(info);
      k_ = ki.GetAttribute<int64_t>("K");
      n_ = ki.GetAttribute<int64_t>("N");
      const int64_t bits = ki.GetAttribute<int64_t>("bits");
      const int64_t block = ki.GetAttribute<int64_t>("block_size");
      if (bits != 8 || block != static_cast<int64_t>(kBlock) || k_ < 1 || n_ < 1) {
        error_ = "MatMulInt8 takes bits 8, block_size 32 and positive K, N; got bits " + std::to_string(bits) +
                 ", block_size " + std::to_string(block);
        return;
      }
      const std::string isa = attribute_or<std::string>(ki, "isa", "auto");
      select_isa(isa.c_str(), &isa_, &error_);
    } catch (const std::exception& exc) {
      error_ = std::string("MatMulInt8: ") + exc.what();
    }
  }

  Ort::Status Compute(OrtKernelContext* context, const Ort::Custom::Tensor<float>& a,
                      const Ort::Custom::Tensor<uint8_t>& b, const Ort::Custom::Tensor<float>& scales,
                      Ort::Custom::Tensor<float>& y) {
    if (!error_.empty()) return Ort::Status(error_.c_str(), ORT_INVALID_ARGUMENT);
    try {
      const std::vector<int64_t>& shape = a.Shape();
      const size_t k = static_cast<size_t>(k_), n = static_cast<size_t>(n_), nb = (k + kBlock - 1) / kBlock;
      if (shape.empty() || shape.back() != k_) {
        return Ort::Status(("MatMulInt8: A's last dimension must be K = " + std::to_string(k_)).c_str(),
                           ORT_INVALID_ARGUMENT);
      }
      if (static_cast<size_t>(b.NumberOfElement()) != n * nb * kBlock ||
          static_cast<size_t>(scales.NumberOfElement()) != n * nb) {
        return Ort::Status("MatMulInt8: B must hold N × ceil(K / 32) × 32 bytes and scales N × ceil(K / 32)",
                           ORT_INVALID_ARGUMENT);
      }
      std::vector<int64_t> out(shape);
      out.back() = n_;
      const size_t m = static_cast<size_t>(a.NumberOfElement()) / k;
      float* dst = y.Allocate(out);
      if (m == 0) return Ort::Status{nullptr};
      Ort::KernelContext ctx(context);
      gemv8(a.Data(), m, Int8Weights{b.Data(), scales.Data(), n, k, nb}, dst, isa_.int8, Parallel{ort_parallel, &ctx});
      return Ort::Status{nullptr};
    } catch (const std::exception& exc) {
      return Ort::Status((std::string("MatMulInt8: ") + exc.what()).c_str(), ORT_FAIL);
    }
  }

  static Ort::Status InferOutputShape(Ort::ShapeInferContext& ctx) {
    Ort::ShapeInferContext::Shape shape = ctx.GetInputShape(0);
    if (shape.empty()) return Ort::Status("MatMulInt8: A must have at least one dimension", ORT_INVALID_ARGUMENT);
    shape.back() = Ort::ShapeInferContext::SymbolicInteger(ctx.GetAttrInt("N"));
    return set_output_shape(ctx, 0, shape);
  }

  int64_t k_ = 0, n_ = 0;
  Isa isa_{};
  std::string error_;
};

}  // namespace

Ort::Custom::OrtLiteCustomOp* matmul_int8_op() {
  static std::unique_ptr<Ort::Custom::OrtLiteCustomOp> op{
      Ort::Custom::CreateLiteCustomOp<MatMulInt8>("MatMulInt8", "CPUExecutionProvider")};
  return op.get();
}

}  // namespace edge_kernels
