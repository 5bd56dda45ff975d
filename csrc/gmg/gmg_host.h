// Host-side pieces of gmg shared by the CPU and CUDA registrations: argument checks, the
// parameters in the compute dtype, and the assembly of the parameter gradients from the
// kernels' per-row partial sums. Device-agnostic (ATen ops only).
#pragma once

#include <ATen/ATen.h>

#include <string_view>
#include <tuple>
#include <vector>

#include "gmg/gmg.h"

namespace pytal {
namespace gmg {

Gating parse_gating(std::string_view gating);

// float32 for float16 / bfloat16 / float32 inputs, float64 for float64.
at::ScalarType compute_type(at::ScalarType input);

// The eight parameters, contiguous, in the compute dtype of u.
struct Params {
  at::Tensor w1, b1, w2, b2;  // (2, C)
  at::Tensor conv_weight;     // (C, k)
  at::Tensor conv_bias, instant_weight, instant_bias;  // (C,)
  int64_t kernel_size = 0;
};

// Checks u (B, C, T) and the parameters' shapes, dtypes and devices, and lambd / gating.
void check_inputs(const at::Tensor& u, const at::Tensor& w1, const at::Tensor& b1,
                  const at::Tensor& w2, const at::Tensor& b2, const at::Tensor& conv_weight,
                  const at::Tensor& conv_bias, const at::Tensor& instant_weight,
                  const at::Tensor& instant_bias, double lambd, std::string_view gating);

// Also checks grad_out and the saved global branch of the backward op.
void check_backward_inputs(const at::Tensor& grad_out, const at::Tensor& u,
                           const at::Tensor& global_branch);

Params prepare_params(const at::Tensor& u, const at::Tensor& w1, const at::Tensor& b1,
                      const at::Tensor& w2, const at::Tensor& b2, const at::Tensor& conv_weight,
                      const at::Tensor& conv_bias, const at::Tensor& instant_weight,
                      const at::Tensor& instant_bias);

// (out, global_branch) for an empty u.
std::tuple<at::Tensor, at::Tensor> empty_forward(const at::Tensor& u);

// The backward op's nine outputs: grad_u (u's dtype) and the parameter gradients (compute
// dtype), from grad_u and the per-channel sums filter_sums (C, kFilterGrads) and gated_sums
// (C, k + kGatedExtraGrads) laid out as documented in gmg.h.
std::vector<at::Tensor> assemble_grads(const at::Tensor& grad_u, const at::Tensor& filter_sums,
                                       const at::Tensor& gated_sums, int64_t kernel_size);

// Backward outputs for an empty u: an empty grad_u and zero parameter gradients.
std::vector<at::Tensor> empty_backward(const at::Tensor& u, const Params& params);

}  // namespace gmg
}  // namespace pytal
