// What the library's custom ops share: onnxruntime's thread pool as a Parallel, output shapes with symbolic
// dimensions, and the ops other files define. Include after onnxruntime's C++ headers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace edge_kernels {

// A tensor shape for an error message: "[2, 5]".
std::string shape_text(const std::vector<int64_t>& shape);

// Parallel::run over an Ort::KernelContext (self): KernelContext::ParallelFor on the session's intra-op pool.
void ort_parallel(const void* self, void (*fn)(void*, size_t), size_t total, void* data);

// ctx.SetOutputShape(index, shape), with each unnamed dynamic dimension (-1) given a fresh symbol.
Ort::Status set_output_shape(Ort::ShapeInferContext& ctx, size_t index, Ort::ShapeInferContext::Shape shape);

// An optional attribute of the node: its value, or `fallback` when the node does not have it.
template <typename T>
T attribute_or(const Ort::ConstKernelInfo& ki, const char* name, T fallback) {
  try {
    return ki.GetAttribute<T>(name);
  } catch (const Ort::Exception&) {
    return fallback;
  }
}

// edge.kernels::GroupAttention and GroupAttentionF16 (attention_op.cpp): an fp32 and a binary16 KV cache.
Ort::Custom::OrtLiteCustomOp* group_attention_op();
Ort::Custom::OrtLiteCustomOp* group_attention_f16_op();

// edge.kernels::MatMulInt8 (int8_op.cpp).
Ort::Custom::OrtLiteCustomOp* matmul_int8_op();

// edge.kernels::GatedGelu (gated_gelu_op.cpp).
Ort::Custom::OrtLiteCustomOp* gated_gelu_op();

// edge.kernels::ReadBytes (read_op.cpp): edge bench --kernels' read reference for the GEMV.
Ort::Custom::OrtLiteCustomOp* read_bytes_op();

}  // namespace edge_kernels
