// CPU kernel of gmg: ATen's FFTs for the transforms, fused loops (gmg.h) for the spectral
// filter and the gated depthwise conv, rows (b, c) in parallel.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <vector>

#include "gmg/gmg.h"
#include "gmg/gmg_host.h"

namespace pytal {
namespace gmg {
namespace {

// Rows per parallel_for task: enough work to amortise the task, small enough to balance.
int64_t grain(int64_t row_len) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, row_len)); }

template <typename T>
struct RowParams {
  const T *w1, *b1, *w2, *b2, *cw, *cb, *a, *ab;
  int64_t C;
  int k;
  explicit RowParams(const Params& p)
      : w1(p.w1.data_ptr<T>()), b1(p.b1.data_ptr<T>()), w2(p.w2.data_ptr<T>()),
        b2(p.b2.data_ptr<T>()), cw(p.conv_weight.data_ptr<T>()), cb(p.conv_bias.data_ptr<T>()),
        a(p.instant_weight.data_ptr<T>()), ab(p.instant_bias.data_ptr<T>()),
        C(p.w1.size(1)), k(static_cast<int>(p.kernel_size)) {}
  Filter<T> filter(int64_t c) const { return load_filter(w1, b1, w2, b2, c, C); }
};

// In place on spec (rows, F, 2): U -> U * W(U).
template <typename T>
void filter_forward_rows(T* spec, int64_t rows, int64_t F, int64_t T_len, const RowParams<T>& p,
                         T lambd) {
  at::parallel_for(0, rows, grain(F), [&](int64_t first, int64_t last) {
    for (int64_t r = first; r < last; ++r) {
      const Filter<T> f = p.filter(r % p.C);
      T* row = spec + r * F * 2;
      for (int64_t k = 0; k < F; ++k) filter_forward(row + 2 * k, k, T_len, f, lambd, T(1), T(1));
    }
  });
}

// Copies row u[0..T) (any dtype) into pad (length T + k - 1), zeros either side.
template <typename S, typename T>
void pad_row(const S* u, int64_t T_len, int k, T* pad) {
  const int p = k / 2;
  for (int i = 0; i < p; ++i) pad[i] = pad[p + T_len + i] = T(0);
  for (int64_t t = 0; t < T_len; ++t) pad[p + t] = static_cast<T>(u[t]);
}

template <typename S, typename T>
void gated_forward_rows(const S* u, const T* g, S* out, int64_t rows, int64_t T_len,
                        const RowParams<T>& p, Gating gating) {
  at::parallel_for(0, rows, grain(T_len), [&](int64_t first, int64_t last) {
    std::vector<T> pad(T_len + p.k - 1);
    for (int64_t r = first; r < last; ++r) {
      const int64_t c = r % p.C;
      const T* w = p.cw + c * p.k;
      pad_row(u + r * T_len, T_len, p.k, pad.data());
      const T* x = pad.data() + p.k / 2;
      for (int64_t t = 0; t < T_len; ++t) {
        const T l = conv_window(pad.data() + t, w, p.k) + p.cb[c];
        const T f = p.a[c] * x[t] + p.ab[c];
        out[r * T_len + t] = static_cast<S>(gated_forward(x[t], g[r * T_len + t], l, f, gating));
      }
    }
  });
}

// dL/dg -> dg, the non-spectral part of dL/du -> du, and per-row sums of the conv and
// instant parameters' gradients -> sums (rows, k + kGatedExtraGrads).
template <typename S, typename T>
void gated_backward_rows(const S* dout, const S* u, const T* g, T* dg, T* du, T* sums,
                         int64_t rows, int64_t T_len, const RowParams<T>& p, Gating gating) {
  const int k = p.k;
  const int64_t width = k + kGatedExtraGrads;
  at::parallel_for(0, rows, grain(T_len), [&](int64_t first, int64_t last) {
    std::vector<T> pad(T_len + k - 1), dl_pad(T_len + 2 * (k - 1));
    for (int64_t r = first; r < last; ++r) {
      const int64_t c = r % p.C, base = r * T_len;
      const T* w = p.cw + c * k;
      pad_row(u + base, T_len, k, pad.data());
      const T* x = pad.data() + k / 2;
      T* dl = dl_pad.data() + (k - 1);  // dl[t], zeros for t in [-(k-1), 0) and [T, T+k-1)
      std::fill(dl_pad.begin(), dl_pad.end(), T(0));
      T* acc = sums + r * width;
      for (int64_t t = 0; t < T_len; ++t) {
        const T l = conv_window(pad.data() + t, w, k) + p.cb[c];
        const T f = p.a[c] * x[t] + p.ab[c];
        T dgt, dlt, dft;
        gated_backward(static_cast<T>(dout[base + t]), g[base + t], l, f, gating, dgt, dlt, dft);
        dg[base + t] = dgt;
        dl[t] = dlt;
        du[base + t] = static_cast<T>(dout[base + t]) + dft * p.a[c];
        acc[k] += dlt;
        acc[k + 1] += dft * x[t];
        acc[k + 2] += dft;
      }
      for (int j = 0; j < k; ++j) {
        T s = T(0);
        for (int64_t t = 0; t < T_len; ++t) s += dl[t] * pad[t + j];
        acc[j] += s;
      }
      for (int64_t t = 0; t < T_len; ++t) {
        du[base + t] += conv_transpose_window(dl + t - k / 2, w, k);
      }
    }
  });
}

// In place on grad (rows, F, 2): rfft(dg) -> dL/dU / c; per-row filter gradient sums.
template <typename T>
void filter_backward_rows(T* grad, const T* spec, T* sums, int64_t rows, int64_t F, int64_t T_len,
                          const RowParams<T>& p, T lambd) {
  at::parallel_for(0, rows, grain(F), [&](int64_t first, int64_t last) {
    for (int64_t r = first; r < last; ++r) {
      const Filter<T> f = p.filter(r % p.C);
      T acc[kFilterGrads] = {};
      for (int64_t k = 0; k < F; ++k) {
        const int64_t i = (r * F + k) * 2;
        filter_backward(grad + i, spec + i, k, T_len, f, lambd, T(1), T(1), acc);
      }
      for (int i = 0; i < kFilterGrads; ++i) sums[r * kFilterGrads + i] = acc[i];
    }
  });
}

std::tuple<at::Tensor, at::Tensor> gmg_cpu(const at::Tensor& u, const at::Tensor& w1,
                                           const at::Tensor& b1, const at::Tensor& w2,
                                           const at::Tensor& b2, const at::Tensor& conv_weight,
                                           const at::Tensor& conv_bias,
                                           const at::Tensor& instant_weight,
                                           const at::Tensor& instant_bias, double lambd,
                                           std::string_view gating) {
  check_inputs(u, w1, b1, w2, b2, conv_weight, conv_bias, instant_weight, instant_bias, lambd,
               gating);
  if (u.numel() == 0) return empty_forward(u);
  const auto params = prepare_params(u, w1, b1, w2, b2, conv_weight, conv_bias, instant_weight,
                                     instant_bias);
  const int64_t B = u.size(0), C = u.size(1), T_len = u.size(2), F = T_len / 2 + 1;
  const auto x = u.contiguous();
  auto spec = at::fft_rfft(x.to(compute_type(u.scalar_type())), T_len, -1, "ortho");
  auto out = at::empty(u.sizes(), u.options());
  at::Tensor g;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, u.scalar_type(), "gmg_cpu", [&] {
    using T = at::opmath_type<scalar_t>;
    const RowParams<T> p(params);
    filter_forward_rows<T>(at::view_as_real(spec).data_ptr<T>(), B * C, F, T_len, p,
                           static_cast<T>(lambd));
    g = at::fft_irfft(spec, T_len, -1, "ortho").contiguous();
    gated_forward_rows<scalar_t, T>(x.data_ptr<scalar_t>(), g.data_ptr<T>(),
                                    out.data_ptr<scalar_t>(), B * C, T_len, p,
                                    parse_gating(gating));
  });
  return {out, g};
}

std::vector<at::Tensor> gmg_backward_cpu(
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
  const int64_t B = u.size(0), C = u.size(1), T_len = u.size(2), F = T_len / 2 + 1;
  const int64_t k = params.kernel_size;
  const auto ctype = compute_type(u.scalar_type());
  const auto copts = u.options().dtype(ctype);
  const auto x = u.contiguous();
  const auto dout = grad_out.contiguous();
  const auto g = global_branch.contiguous();
  auto dg = at::empty({B, C, T_len}, copts);
  auto du = at::empty({B, C, T_len}, copts);
  auto gated_sums = at::zeros({B, C, k + kGatedExtraGrads}, copts);
  auto filter_sums = at::empty({B, C, kFilterGrads}, copts);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, u.scalar_type(), "gmg_backward_cpu",
                                  [&] {
    using T = at::opmath_type<scalar_t>;
    const RowParams<T> p(params);
    gated_backward_rows<scalar_t, T>(dout.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(),
                                     g.data_ptr<T>(), dg.data_ptr<T>(), du.data_ptr<T>(),
                                     gated_sums.data_ptr<T>(), B * C, T_len, p,
                                     parse_gating(gating));
    auto grad_spec = at::fft_rfft(dg, T_len, -1, "ortho");
    const auto spec = at::fft_rfft(x.to(ctype), T_len, -1, "ortho");
    filter_backward_rows<T>(at::view_as_real(grad_spec).data_ptr<T>(),
                            at::view_as_real(spec).data_ptr<T>(), filter_sums.data_ptr<T>(),
                            B * C, F, T_len, p, static_cast<T>(lambd));
    du.add_(at::fft_irfft(grad_spec, T_len, -1, "ortho"));
  });
  return assemble_grads(du.to(u.scalar_type()), filter_sums.sum(0), gated_sums.sum(0), k);
}

}  // namespace

TORCH_LIBRARY_IMPL(pytal, CPU, m) {
  m.impl("gmg", &gmg_cpu);
  m.impl("gmg_backward", &gmg_backward_cpu);
}

}  // namespace gmg
}  // namespace pytal
