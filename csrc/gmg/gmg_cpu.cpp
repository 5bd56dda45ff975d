// CPU kernel of gmg: ATen's FFTs for the transforms, fused loops (gmg.h) for the spectral
// filter and the gated depthwise conv, rows (b, c) in parallel.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

// GCC does not if-convert gmg.h's relu / softshrink selects combined with their slopes under
// the default -ftrapping-math, which left the backward loops scalar ("control flow in loop").
// The kernels never read the floating-point exception flags, so this changes no result.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include "gmg/gmg.h"
#include "gmg/gmg_host.h"

// The build has no -march: the per-row loops are also compiled for AVX2 + FMA and the
// variant is chosen once at load time (GCC function multiversioning). GCC contracts a * b + c
// into FMAs in that variant, so its results can differ from the default one in the last bits
// (as ATen's own AVX2 kernels do); both stay within the tests' tolerances of the reference.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define PYTAL_CPU_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
// Helpers called by the cloned loops are inlined into each clone, so they get its ISA too.
#define PYTAL_CPU_INLINE [[gnu::always_inline]] inline
#else
#define PYTAL_CPU_CLONES
#define PYTAL_CPU_INLINE inline
#endif

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

// Frequencies [1, end) of a length-T spectrum are not self-conjugate: the loops below run
// them without the per-frequency case (so that they vectorise) and the rest one by one.
int64_t interior_end(int64_t T_len) { return T_len / 2 + (T_len % 2); }

// In place on one spectrum row (F, 2): U -> U * W(U).
template <typename T>
PYTAL_CPU_CLONES void filter_forward_row(T* row, int64_t F, int64_t T_len, const Filter<T>& f,
                                         T lambd) {
  const int64_t end = interior_end(T_len);
#pragma omp simd
  for (int64_t k = 1; k < end; ++k) {
    filter_product(row[2 * k], row[2 * k + 1], f, lambd, row[2 * k], row[2 * k + 1]);
  }
  for (int64_t k = 0; k < F; k = (k == 0 ? std::max<int64_t>(end, 1) : k + 1)) {
    filter_forward(row + 2 * k, k, T_len, f, lambd, T(1), T(1));
  }
}

// In place on spec (rows, F, 2): U -> U * W(U).
template <typename T>
void filter_forward_rows(T* spec, int64_t rows, int64_t F, int64_t T_len, const RowParams<T>& p,
                         T lambd) {
  at::parallel_for(0, rows, grain(F), [&](int64_t first, int64_t last) {
    for (int64_t r = first; r < last; ++r) {
      filter_forward_row(spec + r * F * 2, F, T_len, p.filter(r % p.C), lambd);
    }
  });
}

// Copies row u[0..T) (any dtype) into pad (length T + k - 1), zeros either side.
template <typename S, typename T>
PYTAL_CPU_INLINE void pad_row(const S* u, int64_t T_len, int k, T* pad) {
  const int p = k / 2;
  for (int i = 0; i < p; ++i) pad[i] = pad[p + T_len + i] = T(0);
  for (int64_t t = 0; t < T_len; ++t) pad[p + t] = static_cast<T>(u[t]);
}

// out[t] = sum_j w[j] * pad[t + j] for t < n: gmg.h's conv_window at every t, with the loop
// over t innermost so that it vectorises (the CUDA kernel calls conv_window per thread).
template <typename T>
PYTAL_CPU_INLINE void correlate_row(const T* pad, const T* w, int k, int64_t n, T* out) {
  std::fill(out, out + n, T(0));
  for (int j = 0; j < k; ++j) {
    const T wj = w[j];
    const T* src = pad + j;
    for (int64_t t = 0; t < n; ++t) out[t] += wj * src[t];
  }
}

// Per-thread buffers of the gated loops, sized for one row: pad = the zero-padded row of u,
// conv = a correlation result, dl_pad = dL/dl zero-padded likewise, flipped = the kernel
// reversed (so that the transposed conv is a correlation of dl_pad with it).
template <typename T>
struct GatedScratch {
  std::vector<T> pad, conv, dl_pad, flipped;
  GatedScratch(int64_t T_len, int k) : pad(T_len + k - 1), conv(T_len), dl_pad(T_len + k - 1),
                                       flipped(k) {}
};

// One row of out from u, g and channel c's conv and instant parameters.
template <Gating kGating, typename S, typename T>
PYTAL_CPU_CLONES void gated_forward_row(const S* u, const T* g, S* out, int64_t T_len, int64_t c,
                                        const RowParams<T>& p, GatedScratch<T>& scratch) {
  const T cb = p.cb[c], a = p.a[c], ab = p.ab[c];
  pad_row(u, T_len, p.k, scratch.pad.data());
  correlate_row(scratch.pad.data(), p.cw + c * p.k, p.k, T_len, scratch.conv.data());
  const T* x = scratch.pad.data() + p.k / 2;
  const T* conv = scratch.conv.data();
  for (int64_t t = 0; t < T_len; ++t)
    out[t] = static_cast<S>(gated_forward(x[t], g[t], conv[t] + cb, a * x[t] + ab, kGating));
}

// kGating is a template argument so that the per-step loops have no branch and vectorise.
template <Gating kGating, typename S, typename T>
void gated_forward_rows(const S* u, const T* g, S* out, int64_t rows, int64_t T_len,
                        const RowParams<T>& p) {
  at::parallel_for(0, rows, grain(T_len), [&](int64_t first, int64_t last) {
    GatedScratch<T> scratch(T_len, p.k);
    for (int64_t r = first; r < last; ++r) {
      const int64_t base = r * T_len;
      gated_forward_row<kGating>(u + base, g + base, out + base, T_len, r % p.C, p, scratch);
    }
  });
}

// One row of the gated backward: dL/dg -> dg, the non-spectral part of dL/du -> du, and the
// row's sums of the conv and instant parameters' gradients -> acc[k + kGatedExtraGrads].
template <Gating kGating, typename S, typename T>
PYTAL_CPU_CLONES void gated_backward_row(const S* dout, const S* u, const T* g, T* dg, T* du,
                                         T* acc, int64_t T_len, int64_t c, const RowParams<T>& p,
                                         GatedScratch<T>& scratch) {
  const int k = p.k, half = k / 2;
  const T* w = p.cw + c * k;
  const T cb = p.cb[c], a = p.a[c], ab = p.ab[c];
  T* pad = scratch.pad.data();
  T* conv = scratch.conv.data();
  pad_row(u, T_len, k, pad);
  correlate_row(pad, w, k, T_len, conv);
  const T* x = pad + half;
  std::fill(scratch.dl_pad.begin(), scratch.dl_pad.end(), T(0));
  T* dl = scratch.dl_pad.data() + half;  // dl_pad[half + t] = dl[t], zeros outside [0, T)
  T sum_dl = T(0), sum_df_x = T(0), sum_df = T(0);
#pragma omp simd reduction(+ : sum_dl, sum_df_x, sum_df)
  for (int64_t t = 0; t < T_len; ++t) {
    T dgt, dlt, dft;
    const T d = static_cast<T>(dout[t]);
    gated_backward(d, g[t], conv[t] + cb, a * x[t] + ab, kGating, dgt, dlt, dft);
    dg[t] = dgt;
    dl[t] = dlt;
    du[t] = d + dft * a;
    sum_dl += dlt;
    sum_df_x += dft * x[t];
    sum_df += dft;
  }
  acc[k] = sum_dl;
  acc[k + 1] = sum_df_x;
  acc[k + 2] = sum_df;
  for (int j = 0; j < k; ++j) {  // dL/dw[j] = sum_t dl[t] * u[t + j - half]
    T s = T(0);
#pragma omp simd reduction(+ : s)
    for (int64_t t = 0; t < T_len; ++t) s += dl[t] * pad[t + j];
    acc[j] = s;
  }
  T* flipped = scratch.flipped.data();
  for (int j = 0; j < k; ++j) flipped[j] = w[k - 1 - j];
  correlate_row(scratch.dl_pad.data(), flipped, k, T_len, conv);
  for (int64_t t = 0; t < T_len; ++t) du[t] += conv[t];
}

// gated_backward_row for every row; sums is (rows, k + kGatedExtraGrads).
template <Gating kGating, typename S, typename T>
void gated_backward_rows(const S* dout, const S* u, const T* g, T* dg, T* du, T* sums,
                         int64_t rows, int64_t T_len, const RowParams<T>& p) {
  const int64_t width = p.k + kGatedExtraGrads;
  at::parallel_for(0, rows, grain(T_len), [&](int64_t first, int64_t last) {
    GatedScratch<T> scratch(T_len, p.k);
    for (int64_t r = first; r < last; ++r) {
      const int64_t base = r * T_len;
      gated_backward_row<kGating>(dout + base, u + base, g + base, dg + base, du + base,
                                  sums + r * width, T_len, r % p.C, p, scratch);
    }
  });
}

// In place on one row (F, 2) of rfft(dg): -> dL/dU / c (see filter_backward); the row's
// filter gradient sums -> acc[kFilterGrads].
template <typename T>
PYTAL_CPU_CLONES void filter_backward_row(T* g, const T* s, T* acc, int64_t F, int64_t T_len,
                                          const Filter<T>& f, T lambd) {
  const int64_t end = interior_end(T_len);
  T a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
#pragma omp simd reduction(+ : a0, a1, a2, a3, a4, a5, a6, a7)
  for (int64_t k = 1; k < end; ++k) {  // c_k = 2 (see filter_backward)
    const FilterVjp<T> v =
        filter_vjp(s[2 * k], s[2 * k + 1], T(2) * g[2 * k], T(2) * g[2 * k + 1], f, lambd);
    g[2 * k] = v.du_r * T(0.5);
    g[2 * k + 1] = v.du_i * T(0.5);
    a0 += v.param[0], a1 += v.param[1], a2 += v.param[2], a3 += v.param[3];
    a4 += v.param[4], a5 += v.param[5], a6 += v.param[6], a7 += v.param[7];
  }
  T sums[kFilterGrads] = {a0, a1, a2, a3, a4, a5, a6, a7};
  for (int64_t k = 0; k < F; k = (k == 0 ? std::max<int64_t>(end, 1) : k + 1)) {
    filter_backward(g + 2 * k, s + 2 * k, k, T_len, f, lambd, T(1), T(1), sums);
  }
  std::copy(sums, sums + kFilterGrads, acc);
}

// filter_backward_row for every row of grad (rows, F, 2); sums is (rows, kFilterGrads).
template <typename T>
void filter_backward_rows(T* grad, const T* spec, T* sums, int64_t rows, int64_t F, int64_t T_len,
                          const RowParams<T>& p, T lambd) {
  at::parallel_for(0, rows, grain(F), [&](int64_t first, int64_t last) {
    for (int64_t r = first; r < last; ++r) {
      filter_backward_row(grad + r * F * 2, spec + r * F * 2, sums + r * kFilterGrads, F, T_len,
                          p.filter(r % p.C), lambd);
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
    const auto run_gated = parse_gating(gating) == Gating::kPaper
                               ? gated_forward_rows<Gating::kPaper, scalar_t, T>
                               : gated_forward_rows<Gating::kRelease, scalar_t, T>;
    run_gated(x.data_ptr<scalar_t>(), g.data_ptr<T>(), out.data_ptr<scalar_t>(), B * C, T_len,
              p);
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
  auto gated_sums = at::empty({B, C, k + kGatedExtraGrads}, copts);
  auto filter_sums = at::empty({B, C, kFilterGrads}, copts);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, u.scalar_type(), "gmg_backward_cpu",
                                  [&] {
    using T = at::opmath_type<scalar_t>;
    const RowParams<T> p(params);
    const auto run_gated = parse_gating(gating) == Gating::kPaper
                               ? gated_backward_rows<Gating::kPaper, scalar_t, T>
                               : gated_backward_rows<Gating::kRelease, scalar_t, T>;
    run_gated(dout.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(), g.data_ptr<T>(),
              dg.data_ptr<T>(), du.data_ptr<T>(), gated_sums.data_ptr<T>(), B * C, T_len, p);
    auto grad_spec = at::fft_rfft(dg, T_len, -1, "ortho");
    const auto spec = at::fft_rfft(x.to(ctype), T_len, -1, "ortho");
    filter_backward_rows<T>(at::view_as_real(grad_spec).data_ptr<T>(),
                            at::view_as_real(spec).data_ptr<T>(), filter_sums.data_ptr<T>(),
                            B * C, F, T_len, p, static_cast<T>(lambd));
    at::fft_irfft_out(dg, grad_spec, T_len, -1, "ortho");  // dg is free again: reuse it
    du.add_(dg);
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
