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

// Also checks grad_out (B, T, Cb, 2) and stats (B, T, Cb, 2, 2) of the accumulation dtype.
Shape check_backward_inputs(const at::Tensor& grad_out, const at::Tensor& start_logits,
                            const at::Tensor& end_logits, const at::Tensor& offset_logits,
                            const at::Tensor& stats);

// Checks batch / cls / pos: (N,) int64 on the logits' device with values in range (one host
// synchronisation on CUDA).
void check_index(const Shape& s, const at::Tensor& logits, const at::Tensor& batch,
                 const at::Tensor& cls, const at::Tensor& pos);

// Accumulation dtype of the kernels: double for double inputs, float otherwise.
at::ScalarType acc_type(at::ScalarType dtype);

// Uninitialised (out (B, T, Cb, 2), stats (B, T, Cb, 2, 2)).
std::tuple<at::Tensor, at::Tensor> allocate_forward(const at::Tensor& start_logits,
                                                    const Shape& s);

}  // namespace trident_decode
}  // namespace pytal
