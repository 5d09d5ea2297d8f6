// The onnxruntime custom op edge.kernels::GroupAttention: com.microsoft GroupQueryAttention for a layer whose KV
// cache the runtime binds as both past and present (the fused decoder, edge/build/graphs/fused.py): a full-attention
// layer, or a sliding one (local_window_size, with or without sliding_window_cache).
//
// Inputs and attributes are GroupQueryAttention's (query, key, value, past_key, past_value, seqlens_k,
// total_sequence_length; num_heads, kv_num_heads, scale), so the runtime swaps the op type at load
// (edge/kernels/swap.py) for the nodes this op computes exactly: no softcap, smooth softmax or rotary inside the
// op, and no cos/sin caches. Without sliding_window_cache the op appends this call's keys and values to the cache
// at rows [seqlens_k + 1 − seq, seqlens_k + 1) and attends causally over it (attention.h), within the window if
// there is one. With it the cache holds only the latest rows, compacted as GroupQueryAttention does (resident()
// below; edge/build/graphs/fused.py derives the same rows). present has past's shape; when it is the same buffer
// (bound in place) nothing else is copied, otherwise past is copied into it first.
//
// Image blocks: an optional eighth input, the call's mm_token_type_ids [batch, seq], makes the attention exact for
// image prompts, which the fused graph otherwise recomputes in an If branch (edge/kernels/blocks.py folds that
// branch into this op at load). Consecutive image or video tokens (types 1 and 2) form a block whose queries see
// the whole block both ways; keys from earlier calls are never in one. The attribute image_mask says how a block
// meets the window, as transformers' two masks do: "sliding" (the default) window AND (causal OR block), "all"
// (causal AND window) OR block. A layer without a window attends causal OR block.
//
// edge.kernels::GroupAttentionF16 is the same op over a binary16 cache (past_key, past_value, present_key,
// present_value in float16; query, key, value and the output stay fp32): this call's keys and values are
// rounded to binary16 as they are appended, and the kernel widens each cached row as it reads it.
#define ORT_API_MANUAL_INIT
#include "onnxruntime_cxx_api.h"
#undef ORT_API_MANUAL_INIT
#include "onnxruntime_lite_custom_op.h"

#include <cmath>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "attention.h"
#include "dispatch.h"
#include "op.h"

namespace edge_kernels {
namespace {

// Cache: float (GroupAttention) or Ort::Float16_t (GroupAttentionF16), the element type of the KV cache tensors
template <typename Cache>
struct GroupAttention {
  static constexpr bool kHalf = std::is_same_v<Cache, Ort::Float16_t>;
  using Elem = std::conditional_t<kHalf, uint16_t, float>;  // a cache element as the kernel reads it
  static constexpr const char* kName = kHalf ? "GroupAttentionF16" : "GroupAttention";

  GroupAttention(const OrtApi*, const OrtKernelInfo* info) {
    try {
      Ort::ConstKernelInfo ki(info);
      heads_ = ki.GetAttribute<int64_t>("num_heads");
      kv_heads_ = ki.GetAttribute<int64_t>("kv_num_heads");
      scale_ = attribute_or<float>(ki, "scale", 0.0f);
      window_ = attribute_or<int64_t>(ki, "local_window_size", -1);
      compact_ = attribute_or<int64_t>(ki, "sliding_window_cache", 0) == 1;
      const std::string mask = attribute_or<std::string>(ki, "image_mask", "sliding");
      if (mask != "sliding" && mask != "all") {
        error_ = std::string(kName) + ": image_mask must be sliding or all, not " + mask;
        return;
      }
      blocks_widen_window_ = mask == "all";
      if (compact_ && window_ < 1) {
        error_ = std::string(kName) + ": sliding_window_cache needs a local_window_size of at least 1";
        return;
      }
      if (heads_ < 1 || kv_heads_ < 1 || heads_ % kv_heads_ != 0) {
        error_ = std::string(kName) + ": num_heads (" + std::to_string(heads_) + ") must be a positive multiple of "
                 "kv_num_heads (" + std::to_string(kv_heads_) + ")";
        return;
      }
      const std::string isa = attribute_or<std::string>(ki, "isa", "auto");
      Isa chosen{};
      if (!select_isa(isa.c_str(), &chosen, &error_)) return;
      attend_ = chosen.attend;
      narrow_ = chosen.narrow;
    } catch (const std::exception& exc) {
      error_ = std::string(kName) + ": " + exc.what();
    }
  }

  static Ort::Status invalid(const std::string& what) {
    return Ort::Status((std::string(kName) + ": " + what).c_str(), ORT_INVALID_ARGUMENT);
  }

  Ort::Status Compute(OrtKernelContext* context, const Ort::Custom::Tensor<float>& query,
                      const Ort::Custom::Tensor<float>& key, const Ort::Custom::Tensor<float>& value,
                      const Ort::Custom::Tensor<Cache>& past_key, const Ort::Custom::Tensor<Cache>& past_value,
                      const Ort::Custom::Tensor<int32_t>& seqlens_k, const Ort::Custom::Tensor<int32_t>& total,
                      std::optional<const Ort::Custom::Tensor<int64_t>*> token_types, Ort::Custom::Tensor<float>& out,
                      Ort::Custom::Tensor<Cache>& present_key, Ort::Custom::Tensor<Cache>& present_value) {
    if (!error_.empty()) return Ort::Status(error_.c_str(), ORT_INVALID_ARGUMENT);
    try {
      const std::vector<int64_t>& qs = query.Shape();
      const std::vector<int64_t>& cache = past_key.Shape();
      // every shape, for the error messages only (built when one is returned, not on every call)
      const auto got = [&] {
        return "; got query " + shape_text(qs) + ", key " + shape_text(key.Shape()) + ", value " +
               shape_text(value.Shape()) + ", past_key " + shape_text(cache) + ", past_value " +
               shape_text(past_value.Shape());
      };
      if (qs.size() != 3 || cache.size() != 4 || key.Shape() != value.Shape() || past_value.Shape() != cache) {
        return invalid("query, key and value must be [batch, seq, hidden], past_key and past_value "
                       "[batch, kv_num_heads, capacity, head_dim] of one shape" + got());
      }
      const size_t batch = qs[0], seq = qs[1], cap = cache[2], d = cache[3];
      const size_t nh = heads_, kvh = kv_heads_;
      if (static_cast<size_t>(cache[0]) != batch || static_cast<size_t>(cache[1]) != kvh || d % 16 != 0 ||
          static_cast<size_t>(qs[2]) != nh * d || key.Shape() != std::vector<int64_t>{qs[0], qs[1], cache[1] * cache[3]}) {
        return invalid("shapes disagree: with num_heads " + std::to_string(nh) + " and kv_num_heads " +
                       std::to_string(kvh) + ", query must be [batch, seq, num_heads × head_dim], key and value "
                       "[batch, seq, kv_num_heads × head_dim], past_key [batch, kv_num_heads, capacity, "
                       "head_dim], head_dim a multiple of 16" + got());
      }
      if (static_cast<size_t>(seqlens_k.NumberOfElement()) != batch || total.NumberOfElement() != 1) {
        return invalid("seqlens_k must hold one length per batch row and total_sequence_length one value");
      }
      const int64_t* types = nullptr;
      if (token_types.has_value() && *token_types != nullptr) {
        if ((*token_types)->Shape() != std::vector<int64_t>{qs[0], qs[1]}) {
          return invalid("mm_token_type_ids must be [batch, seq] = " + shape_text({qs[0], qs[1]}) + "; got " +
                         shape_text((*token_types)->Shape()));
        }
        types = (*token_types)->Data();
      }
      // per batch row: how many cache rows precede this call's, and how many the cache holds after it
      std::vector<size_t> before(batch), after(batch);
      if (compact_ && cap < static_cast<size_t>(window_)) {
        return invalid("a sliding window cache of " + std::to_string(cap) + " rows cannot hold the window of " +
                       std::to_string(window_));
      }
      for (size_t b = 0; b < batch; ++b) {
        const int64_t t = static_cast<int64_t>(seqlens_k.Data()[b]) + 1;
        if (t < static_cast<int64_t>(seq) || (!compact_ && t > static_cast<int64_t>(cap))) {
          return invalid("seqlens_k + 1 = " + std::to_string(t) + " must lie in [seq = " + std::to_string(seq) +
                         (compact_ ? ", ∞)" : ", capacity = " + std::to_string(cap) + "]"));
        }
        const size_t p = static_cast<size_t>(t) - seq;
        before[b] = compact_ ? resident(p, cap) : p;
        after[b] = compact_ ? resident(p + seq, cap) : p + seq;
      }
      float* o = out.Allocate(qs);
      Elem* pk = reinterpret_cast<Elem*>(present_key.Allocate(cache));
      Elem* pv = reinterpret_cast<Elem*>(present_value.Allocate(cache));
      const Elem* past_k = reinterpret_cast<const Elem*>(past_key.Data());
      const Elem* past_v = reinterpret_cast<const Elem*>(past_value.Data());
      const size_t cache_elems = batch * kvh * cap * d;
      if (pk != past_k) std::memcpy(pk, past_k, cache_elems * sizeof(Elem));
      if (pv != past_v) std::memcpy(pv, past_v, cache_elems * sizeof(Elem));
      Ort::KernelContext ctx(context);
      const Parallel parallel{ort_parallel, &ctx};
      const float scale = scale_ != 0.0f ? scale_ : 1.0f / std::sqrt(static_cast<float>(d));
      const size_t window = window_ > 0 ? static_cast<size_t>(window_) : 0;
      std::vector<size_t> starts, ends;  // image blocks: each query's rows
      for (size_t b = 0; b < batch; ++b) {
        if (seq == 0) break;
        const bool blocks = types != nullptr && block_rows(types + b * seq, seq, before[b], window, &starts, &ends);
        const size_t* rows_from = blocks ? starts.data() : nullptr;
        const size_t* rows_to = blocks ? ends.data() : nullptr;
        const size_t kv_off = b * kvh * cap * d, q_off = b * seq * nh * d;
        const float* new_k = key.Data() + b * seq * kvh * d;
        const float* new_v = value.Data() + b * seq * kvh * d;
        if (before[b] + seq <= cap) {  // this call's rows fit after the cached ones: append and attend in place
          append(new_k, new_v, seq, kvh, d, pk + kv_off, pv + kv_off, cap, before[b]);
          attend_({query.Data() + q_off, pk + kv_off, pv + kv_off, o + q_off, seq, before[b], cap, nh, kvh, d, scale,
                   window, rows_from, rows_to, kHalf},
                  parallel);
          continue;
        }
        // a sliding window cache that must evict: attend over the cached rows and this call's in a scratch
        // copy (a prefill's first positions still see rows the eviction drops), then keep the last after[b]
        const size_t rows = before[b] + seq;
        std::vector<Elem> tk(kvh * rows * d), tv(kvh * rows * d);
        for (size_t n = 0; n < kvh; ++n) {
          std::memcpy(&tk[n * rows * d], pk + kv_off + n * cap * d, before[b] * d * sizeof(Elem));
          std::memcpy(&tv[n * rows * d], pv + kv_off + n * cap * d, before[b] * d * sizeof(Elem));
        }
        append(new_k, new_v, seq, kvh, d, tk.data(), tv.data(), rows, before[b]);
        attend_({query.Data() + q_off, tk.data(), tv.data(), o + q_off, seq, before[b], rows, nh, kvh, d, scale,
                 window, rows_from, rows_to, kHalf},
                parallel);
        for (size_t n = 0; n < kvh; ++n) {
          std::memcpy(pk + kv_off + n * cap * d, &tk[(n * rows + rows - after[b]) * d], after[b] * d * sizeof(Elem));
          std::memcpy(pv + kv_off + n * cap * d, &tv[(n * rows + rows - after[b]) * d], after[b] * d * sizeof(Elem));
        }
      }
      return Ort::Status{nullptr};
    } catch (const std::exception& exc) {
      return Ort::Status((std::string(kName) + ": " + exc.what()).c_str(), ORT_FAIL);
    }
  }

  static Ort::Status InferOutputShape(Ort::ShapeInferContext& ctx) {
    Ort::Status status = set_output_shape(ctx, 0, ctx.GetInputShape(0));
    if (!status.IsOK()) return status;
    status = set_output_shape(ctx, 1, ctx.GetInputShape(3));
    if (!status.IsOK()) return status;
    return set_output_shape(ctx, 2, ctx.GetInputShape(4));
  }

  // sliding_window_cache: the resident rows after `positions` tokens, as GroupQueryAttention compacts a cache of
  // `cap` rows: all of them until it is full, then it drops the oldest in steps of cap − window + 1 rows
  size_t resident(size_t positions, size_t cap) const {
    if (positions <= cap) return positions;
    const size_t step = cap - static_cast<size_t>(window_) + 1;
    return positions - step * ((positions - cap + step - 1) / step);
  }

  // Each query's rows [starts[s], ends[s]) in a buffer whose first `before` rows precede this call's, given the
  // call's token types; false (and nothing written) when the call holds no image or video token.
  bool block_rows(const int64_t* types, size_t seq, size_t before, size_t window, std::vector<size_t>* starts,
                  std::vector<size_t>* ends) const {
    const auto in_block = [&](size_t s) { return types[s] == 1 || types[s] == 2; };
    bool any = false;
    for (size_t s = 0; s < seq && !any; ++s) any = in_block(s);
    if (!any) return false;
    starts->assign(seq, 0);
    ends->assign(seq, 0);
    for (size_t s = 0; s < seq;) {
      size_t run = s + 1;  // [s, run): one block, or one text position
      if (in_block(s)) {
        while (run < seq && in_block(run)) ++run;
      }
      for (size_t i = s; i < run; ++i) {
        const size_t causal_end = before + i + 1;
        size_t start = window && causal_end > window ? causal_end - window : 0;
        if (in_block(i) && (blocks_widen_window_ || !window)) start = std::min(start, before + s);
        (*starts)[i] = start;
        (*ends)[i] = in_block(i) ? before + run : causal_end;
      }
      s = run;
    }
    return true;
  }

  // this call's keys and values ([seq][kv_heads][head_dim]) into a [kv_heads][cap][head_dim] cache at row `row`
  // (rounded to binary16 for a half cache)
  void append(const float* k, const float* v, size_t seq, size_t kvh, size_t d, Elem* ck, Elem* cv, size_t cap,
              size_t row) const {
    for (size_t n = 0; n < kvh; ++n) {
      for (size_t s = 0; s < seq; ++s) {
        const size_t src = (s * kvh + n) * d, dst = (n * cap + row + s) * d;
        if constexpr (kHalf) {
          narrow_(k + src, ck + dst, d);
          narrow_(v + src, cv + dst, d);
        } else {
          std::memcpy(ck + dst, k + src, d * sizeof(float));
          std::memcpy(cv + dst, v + src, d * sizeof(float));
        }
      }
    }
  }

  int64_t heads_ = 0, kv_heads_ = 0;
  float scale_ = 0.0f;    // 0: 1 / sqrt(head_dim), as GroupQueryAttention
  int64_t window_ = -1;   // local_window_size: -1 none, else the rows a query sees, itself included
  bool compact_ = false;  // sliding_window_cache = 1: the cache holds a window that the op compacts
  bool blocks_widen_window_ = false;  // image_mask "all": a block's queries see the whole block, past the window
  AttendFn attend_ = nullptr;
  NarrowFn narrow_ = nullptr;
  std::string error_;
};

}  // namespace

Ort::Custom::OrtLiteCustomOp* group_attention_op() {
  static std::unique_ptr<Ort::Custom::OrtLiteCustomOp> op{
      Ort::Custom::CreateLiteCustomOp<GroupAttention<float>>("GroupAttention", "CPUExecutionProvider")};
  return op.get();
}

Ort::Custom::OrtLiteCustomOp* group_attention_f16_op() {
  static std::unique_ptr<Ort::Custom::OrtLiteCustomOp> op{
      Ort::Custom::CreateLiteCustomOp<GroupAttention<Ort::Float16_t>>("GroupAttentionF16", "CPUExecutionProvider")};
  return op.get();
}

}  // namespace edge_kernels
