// The onnxruntime custom op edge.kernels::MatMulInt8: a com.microsoft MatMulNBits node with bits 8, block_size 32,
// accuracy level 4 and no zero points (A, B, scales; K, N), swapped at load like MatMulInt4 (edge/kernels/swap.py)
// and reading the same bytes in place (int8.h): no pre-packed copy, no block sums. Up to kMaxRows rows (the
// decoder's LM head, one row per decode step) it runs the GEMV; more rows (the vision and audio graphs'
// prefill) take the int4 GEMM's panels over whole bytes where the path has them (panel8), the GEMV elsewhere.
// The attribute "isa" names the path (dispatch.h).
#define ORT_API_MANUAL_INIT
#include "onnxruntime_cxx_api.h"
#undef ORT_API_MANUAL_INIT
#include "onnxruntime_lite_custom_op.h"

#include <memory>

#include "int8.h"
#include "weight_op.h"

namespace edge_kernels {
namespace {

// MatMulNBits' 8-bit layout (int8.h): the GEMV for any M (the decoder's LM head sees one row per step).
struct Int8Layout {
  static constexpr const char* kName = "MatMulInt8";
  static constexpr int64_t kBits = 8;
  static constexpr size_t kBlockBytes = kBlock;
  static void run(const Isa& isa, const float* a, size_t m, size_t k, size_t n, size_t nb, const uint8_t* b,
                  const float* scales, float* y, const Parallel& parallel) {
    if (m > kMaxRows && isa.panel8 != nullptr) {  // prefill: the int4 GEMM's panels over whole bytes
      gemm(a, m, Int4Weights{b, scales, n, k, nb}, y, isa.panel8, parallel);
      return;
    }
    gemv8(a, m, Int8Weights{b, scales, n, k, nb}, y, isa.int8, parallel);
  }
};

using MatMulInt8 = WeightMatMul<Int8Layout>;

}  // namespace

Ort::Custom::OrtLiteCustomOp* matmul_int8_op() {
  static std::unique_ptr<Ort::Custom::OrtLiteCustomOp> op{
      Ort::Custom::CreateLiteCustomOp<MatMulInt8>("MatMulInt8", "CPUExecutionProvider")};
  return op.get();
}

}  // namespace edge_kernels
