// The onnxruntime custom op edge.kernels::GatedGelu: Y[..., half] = gelu_tanh(X[..., :half]) · X[..., half:] for
// X[..., 2 · half], the fused decoder's Split → Gelu(approximate="tanh") → Mul over its gate/up matmul, which the
// runtime folds into this one node at load (edge/kernels/gated.py). The attribute "isa" names the path.
#define ORT_API_MANUAL_INIT
#include "onnxruntime_cxx_api.h"
#undef ORT_API_MANUAL_INIT
#include "onnxruntime_lite_custom_op.h"

#include <memory>
#include <string>
#include <vector>

#include "dispatch.h"
#include "op.h"

namespace edge_kernels {
namespace {

struct GatedGelu {
  GatedGelu(const OrtApi*, const OrtKernelInfo* info) {
    try {
      Ort::ConstKernelInfo ki(info);
      const std::string isa = attribute_or<std::string>(ki, "isa", "auto");
      Isa chosen{};
      if (!select_isa(isa.c_str(), &chosen, &error_)) return;
      gated_ = chosen.gated;
    } catch (const std::exception& exc) {
      error_ = std::string("GatedGelu: ") + exc.what();
    }
  }

  Ort::Status Compute(OrtKernelContext* context, const Ort::Custom::Tensor<float>& x, Ort::Custom::Tensor<float>& y) {
    if (!error_.empty()) return Ort::Status(error_.c_str(), ORT_INVALID_ARGUMENT);
    try {
      std::vector<int64_t> shape = x.Shape();
      if (shape.empty() || shape.back() % 2 != 0) {
        const std::string what = "GatedGelu: the input's last dimension must be even (gate, then up); got ";
        return Ort::Status((what + shape_text(shape)).c_str(), ORT_INVALID_ARGUMENT);
      }
      const size_t width = static_cast<size_t>(shape.back());
      const size_t rows = width ? static_cast<size_t>(x.NumberOfElement()) / width : 0;
      shape.back() /= 2;
      float* out = y.Allocate(shape);
      Ort::KernelContext ctx(context);
      gated_({x.Data(), out, rows, width / 2}, Parallel{ort_parallel, &ctx});
      return Ort::Status{nullptr};
    } catch (const std::exception& exc) {
      return Ort::Status((std::string("GatedGelu: ") + exc.what()).c_str(), ORT_FAIL);
    }
  }

  static Ort::Status InferOutputShape(Ort::ShapeInferContext& ctx) {
    Ort::ShapeInferContext::Shape shape = ctx.GetInputShape(0);
    if (shape.empty()) return Ort::Status{nullptr};  // rank unknown here (a scalar is refused when run)
    Ort::ShapeInferContext::SymbolicInteger& last = shape.back();
    if (last.IsInt() && last.AsInt() >= 0) last = Ort::ShapeInferContext::SymbolicInteger(last.AsInt() / 2);
    else last = Ort::ShapeInferContext::SymbolicInteger(int64_t{-1});
    return set_output_shape(ctx, 0, shape);
  }

  GatedFn gated_ = nullptr;
  std::string error_;
};

}  // namespace

Ort::Custom::OrtLiteCustomOp* gated_gelu_op() {
  static std::unique_ptr<Ort::Custom::OrtLiteCustomOp> op{
      Ort::Custom::CreateLiteCustomOp<GatedGelu>("GatedGelu", "CPUExecutionProvider")};
  return op.get();
}

}  // namespace edge_kernels
