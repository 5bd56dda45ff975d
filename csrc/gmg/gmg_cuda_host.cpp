// CUDA registration of gmg: tensor handling on the host; cuFFT R2C -> fused spectral filter
// -> cuFFT C2R -> fused gated conv (forward), and the same chain reversed (backward).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <cmath>

#include "common/cuda_pointers.h"
#include "gmg/gmg_cuda.h"
#include "gmg/gmg_cufft.h"
#include "gmg/gmg_host.h"

namespace pytal {
namespace gmg {
namespace {

template <typename T>
DeviceParams<T> device_params(const Params& p) {
  return DeviceParams<T>{p.w1.data_ptr<T>(), p.b1.data_ptr<T>(), p.w2.data_ptr<T>(),
                         p.b2.data_ptr<T>(), p.conv_weight.data_ptr<T>(),
                         p.conv_bias.data_ptr<T>(), p.instant_weight.data_ptr<T>(),
                         p.instant_bias.data_ptr<T>(), p.w1.size(1),
                         static_cast<int>(p.kernel_size)};
}

// (rows, T/2 + 1, 2) spectrum of the rows of x (rows, T), compute dtype, unnormalised.
at::Tensor spectrum(const at::Tensor& x_rows) {
  const int64_t rows = x_rows.size(0), T_len = x_rows.size(1);
  auto spec = at::empty({rows, T_len / 2 + 1, 2}, x_rows.options());
  cufft_r2c(x_rows, spec);
  return spec;
}

std::tuple<at::Tensor, at::Tensor> gmg_cuda(const at::Tensor& u, const at::Tensor& w1,
                                            const at::Tensor& b1, const at::Tensor& w2,
                                            const at::Tensor& b2, const at::Tensor& conv_weight,
                                            const at::Tensor& conv_bias,
                                            const at::Tensor& instant_weight,
                                            const at::Tensor& instant_bias, double lambd,
                                            std::string_view gating) {
  check_inputs(u, w1, b1, w2, b2, conv_weight, conv_bias, instant_weight, instant_bias, lambd,
               gating);
  if (u.numel() == 0) return empty_forward(u);
  const c10::cuda::CUDAGuard guard(u.device());
  const auto stream = c10::cuda::getCurrentCUDAStream(u.get_device()).stream();
  const auto params = prepare_params(u, w1, b1, w2, b2, conv_weight, conv_bias, instant_weight,
                                     instant_bias);
  const int64_t B = u.size(0), C = u.size(1), T_len = u.size(2), rows = B * C;
  const auto ctype = compute_type(u.scalar_type());
  const auto x = u.contiguous();
  auto spec = spectrum(x.to(ctype).view({rows, T_len}));
  auto g = at::empty({B, C, T_len}, x.options().dtype(ctype));
  auto out = at::empty({B, C, T_len}, x.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, u.scalar_type(), "gmg_cuda", [&] {
    using T = at::opmath_type<scalar_t>;
    const auto p = device_params<T>(params);
    const T scale = T(1) / std::sqrt(static_cast<T>(T_len));
    C10_CUDA_CHECK(launch_filter_forward<T>(spec.data_ptr<T>(), rows, T_len, p,
                                            static_cast<T>(lambd), scale, scale, stream));
    cufft_c2r(spec, g.view({rows, T_len}));
    C10_CUDA_CHECK(launch_gated_forward(cuda_ptr<scalar_t>(x), g.data_ptr<T>(),
                                        cuda_mut_ptr<scalar_t>(out), rows, T_len, p,
                                        parse_gating(gating), stream));
  });
  return {out, g};
}

std::vector<at::Tensor> gmg_backward_cuda(
    const at::Tensor& grad_out, const at::Tensor& u, const at::Tensor& global_branch,
    const at::Tensor& w1, const at::Tensor& b1, const at::Tensor& w2, const at::Tensor& b2,
    const at::Tensor& conv_weight, const at::Tensor& conv_bias, const at::Tensor& instant_weight,
    const at::Tensor& instant_bias, double lambd, std::string_view gating) {
  check_inputs(u, w1, b1, w2, b2, conv_weight, conv_bias, instant_weight, instant_bias, lambd,
               gating);
  check_backward_inputs(grad_out, u, global_branch);
  const auto params = prepare_params(u, w1, b1, w2, b2, conv_weight, conv_bias, instant_weight,
                                     instant_bias);
  if (u.numel() == 0) return empty_backward(u, params);
  const c10::cuda::CUDAGuard guard(u.device());
  const auto stream = c10::cuda::getCurrentCUDAStream(u.get_device()).stream();
  const int64_t B = u.size(0), C = u.size(1), T_len = u.size(2), rows = B * C;
  const int64_t k = params.kernel_size, F = T_len / 2 + 1;
  const auto ctype = compute_type(u.scalar_type());
  const auto copts = u.options().dtype(ctype);
  const auto x = u.contiguous();
  const auto dout = grad_out.contiguous();
  const auto g = global_branch.contiguous();
  auto dg = at::empty({rows, T_len}, copts);
  auto du = at::empty({B, C, T_len}, copts);
  auto gated_partial = at::empty({B, C, chunks_per_row(T_len), k + kGatedExtraGrads}, copts);
  auto filter_partial = at::empty({B, C, chunks_per_row(F), kFilterGrads}, copts);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, u.scalar_type(), "gmg_backward_cuda",
                                  [&] {
    using T = at::opmath_type<scalar_t>;
    const auto p = device_params<T>(params);
    const T scale = T(1) / std::sqrt(static_cast<T>(T_len));
    C10_CUDA_CHECK(launch_gated_backward(cuda_ptr<scalar_t>(dout), cuda_ptr<scalar_t>(x),
                                         g.data_ptr<T>(), dg.data_ptr<T>(), du.data_ptr<T>(),
                                         gated_partial.data_ptr<T>(), rows, T_len, p,
                                         parse_gating(gating), stream));
    auto grad_spec = spectrum(dg);
    const auto spec = spectrum(x.to(ctype).view({rows, T_len}));
    C10_CUDA_CHECK(launch_filter_backward<T>(grad_spec.data_ptr<T>(), spec.data_ptr<T>(),
                                             filter_partial.data_ptr<T>(), rows, T_len, p,
                                             static_cast<T>(lambd), scale, scale, stream));
    cufft_c2r(grad_spec, dg);  // dg's storage now holds the spectral part of dL/du
    du.view({rows, T_len}).add_(dg);
  });
  (void)F;
  return assemble_grads(du.to(u.scalar_type()), filter_partial.sum({0, 2}),
                        gated_partial.sum({0, 2}), k);
}

}  // namespace

TORCH_LIBRARY_IMPL(pytal, CUDA, m) {
  m.impl("gmg", &gmg_cuda);
  m.impl("gmg_backward", &gmg_backward_cuda);
}

}  // namespace gmg
}  // namespace pytal
