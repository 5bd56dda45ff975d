// Host-side pieces of trident_decode shared by the CPU and CUDA registrations: argument
// checks, the problem shape and output allocation. Device-agnostic (ATen ops only).
#pragma once

#include <ATen/ATen.h>

#include <tuple>

#include "trident_decode/trident_decode.h"

namespace pytal {
namespace trident_decode {

// Checks start_logits / end_logits (B, Cb, T) and offset_logits (B, T, 2, K): dimensions,
// matching sizes, K >= 1, one floating dtype and one device. Returns the shape.
Shape check_inputs(const at::Tensor& start_logits, const at::Tensor& end_logits,
                   const at::Tensor& offset_logits);

// Also checks grad_out (B, T, Cb, 2) and stats (B, T, Cb, 2, kStats) of the accumulation dtype.
Shape check_backward_inputs(const at::Tensor& grad_out, const at::Tensor& start_logits,
                            const at::Tensor& end_logits, const at::Tensor& offset_logits,
                            const at::Tensor& stats);

// Checks batch / cls / pos: (N,) int64 on the logits' device with values in range (one host
// synchronisation on CUDA).
void check_index(const Shape& s, const at::Tensor& logits, const at::Tensor& batch,
                 const at::Tensor& cls, const at::Tensor& pos);

// Also checks grad_out (N, 2) and stats (N, 2, kStats) of the accumulation dtype, for the index
// form's backward.
Shape check_index_backward_inputs(const at::Tensor& grad_out, const at::Tensor& start_logits,
                                  const at::Tensor& end_logits, const at::Tensor& offset_logits,
                                  const at::Tensor& batch, const at::Tensor& cls,
                                  const at::Tensor& pos, const at::Tensor& stats);

// Accumulation dtype of the kernels: double for double inputs, float otherwise.
at::ScalarType acc_type(at::ScalarType dtype);

// Uninitialised (out (B, T, Cb, 2), stats (B, T, Cb, 2, kStats)); stats is empty (0,) when
// save_stats is false.
std::tuple<at::Tensor, at::Tensor> allocate_forward(const at::Tensor& start_logits,
                                                    const Shape& s, bool save_stats);

// Uninitialised out (N, 2) and stats (N, 2, kStats), stats empty (0,) without save_stats.
std::tuple<at::Tensor, at::Tensor> allocate_index_forward(const at::Tensor& start_logits,
                                                          int64_t n, bool save_stats);

// Triples of the index form in groups, for a backward where each group has one writer:
// order (N,) sorts them by a key (stably, so equal triples keep their input order) and
// group i is order[starts[i] .. starts[i + 1]).
struct TripleGroups {
  at::Tensor order;   // (N,) int64
  at::Tensor starts;  // (G + 1,) int64; on CUDA G = N, trailing groups empty
  int64_t count() const { return starts.size(0) - 1; }
};

// Buffers of the index form's backward: the per-triple logit gradients (N, 2, K) and the
// gradients of the three inputs, zeroed, the boundary ones in the accumulation dtype; the
// triples grouped by boundary row (b, c) (by position inside a row) and by offset row (b, t).
struct IndexBackward {
  at::Tensor logit_grads, grad_start, grad_end, grad_offset;
  TripleGroups rows, positions;
};
IndexBackward prepare_index_backward(const Shape& s, const at::Tensor& start_logits,
                                     const at::Tensor& offset_logits, const at::Tensor& batch,
                                     const at::Tensor& cls, const at::Tensor& pos);

// (grad_start, grad_end, grad_offset) in the inputs' dtype.
std::tuple<at::Tensor, at::Tensor, at::Tensor> finish_index_backward(
    const IndexBackward& work, at::ScalarType dtype);

}  // namespace trident_decode
}  // namespace pytal
