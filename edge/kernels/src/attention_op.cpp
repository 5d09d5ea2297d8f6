// The onnxruntime custom op edge.kernels::GroupAttention: com.microsoft GroupQueryAttention for a full-attention
// layer whose KV cache the runtime binds as both past and present (the fused decoder, edge/build/graphs/fused.py).
//
// Inputs and attributes are GroupQueryAttention's (query, key, value, past_key, past_value, seqlens_k,
// total_sequence_length; num_heads, kv_num_heads, scale), so the runtime swaps the op type at load
// (edge/kernels/swap.py) for the nodes this op computes exactly: no sliding window, softcap, smooth softmax or
// rotary inside the op, and no cos/sin caches. The op appends this call's keys and values to the cache at rows
// [seqlens_k + 1 − seq, seqlens_k + 1) and attends causally over it (attention.h). present has past's shape;
// when it is the same buffer (bound in place) nothing else is copied, otherwise past is copied into it first.
#define ORT_API_MANUAL_INIT
#include "onnxruntime_cxx_api.h"
#undef ORT_API_MANUAL_INIT
#include "onnxruntime_lite_custom_op.h"

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "attention.h"
#include "dispatch.h"
#include "op.h"

namespace edge_kernels {
namespace {

struct GroupAttention {
  GroupAttention(const OrtApi*, const OrtKernelInfo* info) {
    try {
      Ort::ConstKernelInfo ki(info);
      heads_ = ki.GetAttribute<int64_t>("num_heads");
      kv_heads_ = ki.GetAttribute<int64_t>("kv_num_heads");
      try {
        scale_ = ki.GetAttribute<float>("scale");
      } catch (const Ort::Exception&) {
      }
      if (heads_ < 1 || kv_heads_ < 1 || heads_ % kv_heads_ != 0) {
        error_ = "GroupAttention: num_heads (" + std::to_string(heads_) + ") must be a positive multiple of "
                 "kv_num_heads (" + std::to_string(kv_heads_) + ")";
        return;
      }
      std::string isa = "auto";
      try {
        isa = ki.GetAttribute<std::string>("isa");
      } catch (const Ort::Exception&) {
      }
      Isa chosen{};
      if (!select_isa(isa.c_str(), &chosen, &error_)) return;
      attend_ = chosen.attend;
    } catch (const std::exception& exc) {
      error_ = std::string("GroupAttention: ") + exc.what();
    }
  }

  static std::string dims(const std::vector<int64_t>& shape) {
    std::string out = "[";
    for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
    return out + "]";
  }

  static Ort::Status invalid(const std::string& what) {
    return Ort::Status(("GroupAttention: " + what).c_str(), ORT_INVALID_ARGUMENT);
  }

  Ort::Status Compute(OrtKernelContext* context, const Ort::Custom::Tensor<float>& query,
                      const Ort::Custom::Tensor<float>& key, const Ort::Custom::Tensor<float>& value,
                      const Ort::Custom::Tensor<float>& past_key, const Ort::Custom::Tensor<float>& past_value,
                      const Ort::Custom::Tensor<int32_t>& seqlens_k, const Ort::Custom::Tensor<int32_t>& total,
                      Ort::Custom::Tensor<float>& out, Ort::Custom::Tensor<float>& present_key,
                      Ort::Custom::Tensor<float>& present_value) {
    if (!error_.empty()) return Ort::Status(error_.c_str(), ORT_INVALID_ARGUMENT);
    try {
      const std::vector<int64_t>& qs = query.Shape();
      const std::vector<int64_t>& cache = past_key.Shape();
      const std::string got = "; got query " + dims(qs) + ", key " + dims(key.Shape()) + ", value " +
                              dims(value.Shape()) + ", past_key " + dims(cache) + ", past_value " +
                              dims(past_value.Shape());
      if (qs.size() != 3 || cache.size() != 4 || key.Shape() != value.Shape() || past_value.Shape() != cache) {
        return invalid("query, key and value must be [batch, seq, hidden], past_key and past_value "
                       "[batch, kv_num_heads, capacity, head_dim] of one shape" + got);
      }
      const size_t batch = qs[0], seq = qs[1], cap = cache[2], d = cache[3];
      const size_t nh = heads_, kvh = kv_heads_;
      if (static_cast<size_t>(cache[0]) != batch || static_cast<size_t>(cache[1]) != kvh || d % 16 != 0 ||
          static_cast<size_t>(qs[2]) != nh * d || key.Shape() != std::vector<int64_t>{qs[0], qs[1], cache[1] * cache[3]}) {
        return invalid("shapes disagree: with num_heads " + std::to_string(nh) + " and kv_num_heads " +
                       std::to_string(kvh) + ", query must be [batch, seq, num_heads × head_dim], key and value "
                       "[batch, seq, kv_num_heads × head_dim], past_key [batch, kv_num_heads, capacity, "
                       "head_dim], head_dim a multiple of 16" + got);
      }
      if (static_cast<size_t>(seqlens_k.NumberOfElement()) != batch || total.NumberOfElement() != 1) {
        return invalid("seqlens_k must hold one length per batch row and total_sequence_length one value");
      }
      std::vector<size_t> past(batch);
      for (size_t b = 0; b < batch; ++b) {
        const int64_t t = static_cast<int64_t>(seqlens_k.Data()[b]) + 1;
        if (t < static_cast<int64_t>(seq) || t > static_cast<int64_t>(cap)) {
          return invalid("seqlens_k + 1 = " + std::to_string(t) + " must lie in [seq = " + std::to_string(seq) +
                         ", capacity = " + std::to_string(cap) + "]");
        }
        past[b] = static_cast<size_t>(t) - seq;
      }
      float* o = out.Allocate(qs);
      float* pk = present_key.Allocate(cache);
      float* pv = present_value.Allocate(cache);
      const size_t cache_floats = batch * kvh * cap * d;
      if (pk != past_key.Data()) std::memcpy(pk, past_key.Data(), cache_floats * sizeof(float));
      if (pv != past_value.Data()) std::memcpy(pv, past_value.Data(), cache_floats * sizeof(float));
      Ort::KernelContext ctx(context);
      const Parallel parallel{ort_parallel, &ctx};
      for (size_t b = 0; b < batch; ++b) {
        for (size_t n = 0; n < kvh; ++n) {
          for (size_t s = 0; s < seq; ++s) {
            const size_t src = ((b * seq + s) * kvh + n) * d, dst = ((b * kvh + n) * cap + past[b] + s) * d;
            std::memcpy(pk + dst, key.Data() + src, d * sizeof(float));
            std::memcpy(pv + dst, value.Data() + src, d * sizeof(float));
          }
        }
        const size_t kv_off = b * kvh * cap * d, q_off = b * seq * nh * d;
        const float scale = scale_ != 0.0f ? scale_ : 1.0f / std::sqrt(static_cast<float>(d));
        const AttentionArgs args{query.Data() + q_off, pk + kv_off, pv + kv_off, o + q_off, seq, past[b], cap,
                                 nh, kvh, d, scale};
        if (seq > 0) attend_(args, parallel);
      }
      return Ort::Status{nullptr};
    } catch (const std::exception& exc) {
      return Ort::Status((std::string("GroupAttention: ") + exc.what()).c_str(), ORT_FAIL);
    }
  }

  static Ort::Status InferOutputShape(Ort::ShapeInferContext& ctx) {
    Ort::Status status = set_output_shape(ctx, 0, ctx.GetInputShape(0));
    if (!status.IsOK()) return status;
    status = set_output_shape(ctx, 1, ctx.GetInputShape(3));
    if (!status.IsOK()) return status;
    return set_output_shape(ctx, 2, ctx.GetInputShape(4));
  }

  int64_t heads_ = 0, kv_heads_ = 0;
  float scale_ = 0.0f;  // 0: 1 / sqrt(head_dim), as GroupQueryAttention
  AttendFn attend_ = nullptr;
  std::string error_;
};

}  // namespace

Ort::Custom::OrtLiteCustomOp* group_attention_op() {
  static std::unique_ptr<Ort::Custom::OrtLiteCustomOp> op{
      Ort::Custom::CreateLiteCustomOp<GroupAttention>("GroupAttention", "CPUExecutionProvider")};
  return op.get();
}

}  // namespace edge_kernels
