#include "gmg/gmg_host.h"

#include <cmath>
#include <limits>

#include "common/checks.h"

namespace pytal {
namespace gmg {

Gating parse_gating(std::string_view gating) {
  if (gating == "paper") return Gating::kPaper;
  if (gating == "release") return Gating::kRelease;
  TORCH_CHECK(false, "gating must be \"paper\" or \"release\", got \"", std::string(gating),
              "\"");
}

at::ScalarType compute_type(at::ScalarType input) {
  return input == at::kDouble ? at::kDouble : at::kFloat;
}

namespace {

void check_param(const at::Tensor& p, const at::Tensor& u, std::vector<int64_t> shape,
                 const char* name, const char* what) {
  TORCH_CHECK(p.sizes() == at::IntArrayRef(shape), name, " must have shape ", what, ", got ",
              shape_of(p));
  check_floating(p, name, /*allow_half=*/true);
  check_same_device(p, u, name, "u");
}

}  // namespace

void check_inputs(const at::Tensor& u, const at::Tensor& w1, const at::Tensor& b1,
                  const at::Tensor& w2, const at::Tensor& b2, const at::Tensor& conv_weight,
                  const at::Tensor& conv_bias, const at::Tensor& instant_weight,
                  const at::Tensor& instant_bias, double lambd, std::string_view gating) {
  check_dim(u, 3, "u", "(B, C, T)");
  check_floating(u, "u", /*allow_half=*/true);
  const int64_t C = u.size(1);
  check_param(w1, u, {2, C}, "filter_w1", "(2, C)");
  check_param(b1, u, {2, C}, "filter_b1", "(2, C)");
  check_param(w2, u, {2, C}, "filter_w2", "(2, C)");
  check_param(b2, u, {2, C}, "filter_b2", "(2, C)");
  check_dim(conv_weight, 2, "conv_weight", "(C, k)");
  const int64_t k = conv_weight.size(1);
  TORCH_CHECK(k % 2 == 1 && k <= kMaxKernelSize,
              "conv_weight must have an odd kernel size k <= ", kMaxKernelSize, ", got k = ", k);
  check_param(conv_weight, u, {C, k}, "conv_weight", "(C, k)");
  check_param(conv_bias, u, {C}, "conv_bias", "(C,)");
  check_param(instant_weight, u, {C}, "instant_weight", "(C,)");
  check_param(instant_bias, u, {C}, "instant_bias", "(C,)");
  TORCH_CHECK(lambd >= 0.0 && std::isfinite(lambd), "lambd must be a finite number >= 0, got ",
              lambd);
  parse_gating(gating);
  TORCH_CHECK(u.size(0) * C < std::numeric_limits<int32_t>::max(),
              "gmg supports fewer than 2^31 - 1 rows B * C, got ", u.size(0) * C);
}

void check_backward_inputs(const at::Tensor& grad_out, const at::Tensor& u,
                           const at::Tensor& global_branch) {
  TORCH_CHECK(grad_out.sizes() == u.sizes(), "grad_out must have the shape of u ",
              shape_of(u), ", got ", shape_of(grad_out));
  check_dtype(grad_out, u.scalar_type(), "grad_out");
  check_same_device(grad_out, u, "grad_out", "u");
  TORCH_CHECK(global_branch.sizes() == u.sizes(), "global_branch must have the shape of u ",
              shape_of(u), ", got ", shape_of(global_branch));
  check_dtype(global_branch, compute_type(u.scalar_type()), "global_branch");
  check_same_device(global_branch, u, "global_branch", "u");
}

Params prepare_params(const at::Tensor& u, const at::Tensor& w1, const at::Tensor& b1,
                      const at::Tensor& w2, const at::Tensor& b2, const at::Tensor& conv_weight,
                      const at::Tensor& conv_bias, const at::Tensor& instant_weight,
                      const at::Tensor& instant_bias) {
  const auto type = compute_type(u.scalar_type());
  const auto prep = [type](const at::Tensor& p) { return p.to(type).contiguous(); };
  Params p;
  p.w1 = prep(w1);
  p.b1 = prep(b1);
  p.w2 = prep(w2);
  p.b2 = prep(b2);
  p.conv_weight = prep(conv_weight);
  p.conv_bias = prep(conv_bias);
  p.instant_weight = prep(instant_weight);
  p.instant_bias = prep(instant_bias);
  p.kernel_size = conv_weight.size(1);
  return p;
}

std::tuple<at::Tensor, at::Tensor> empty_forward(const at::Tensor& u) {
  return {at::empty(u.sizes(), u.options()),
          at::empty(u.sizes(), u.options().dtype(compute_type(u.scalar_type())))};
}

std::vector<at::Tensor> assemble_grads(const at::Tensor& grad_u, const at::Tensor& filter_sums,
                                       const at::Tensor& gated_sums, int64_t kernel_size) {
  const auto f = filter_sums.t();  // (kFilterGrads, C)
  const int64_t k = kernel_size;
  return {grad_u,
          f.narrow(0, 0, 2).contiguous(),
          f.narrow(0, 2, 2).contiguous(),
          f.narrow(0, 4, 2).contiguous(),
          f.narrow(0, 6, 2).contiguous(),
          gated_sums.narrow(1, 0, k).contiguous(),
          gated_sums.select(1, k).contiguous(),
          gated_sums.select(1, k + 1).contiguous(),
          gated_sums.select(1, k + 2).contiguous()};
}

std::vector<at::Tensor> empty_backward(const at::Tensor& u, const Params& params) {
  const int64_t C = u.size(1);
  const auto opts = params.w1.options();
  return assemble_grads(at::empty(u.sizes(), u.options()), at::zeros({C, kFilterGrads}, opts),
                        at::zeros({C, params.kernel_size + kGatedExtraGrads}, opts),
                        params.kernel_size);
}

}  // namespace gmg
}  // namespace pytal
