// The math of the GMG token mixer (docs/ops.md, "gmg") as inline host/device functions, shared
// by the CPU kernel (gmg_cpu.cpp) and the CUDA kernels (gmg_cuda.cu). No torch headers.
//
// Per (b, c) row of u (length T, F = T/2 + 1 frequencies):
//   spectral filter, per frequency:  P = U * W(U),  W = softshrink(cmul(relu(cmul(U,w1)+b1),w2)+b2)
//   gated conv, per time step:       out = mix(u, g, l = conv(u) + cb, f = a*u + ab)
// and their backward passes. T = the compute type (float, or double for float64 inputs).
#pragma once

#include <cstdint>

#include "common/host_device.h"

namespace pytal {
namespace gmg {

enum class Gating : int { kPaper = 0, kRelease = 1 };

// Number of parameter-gradient partial sums per row of each backward kernel.
constexpr int kFilterGrads = 8;  // w1 (re, im), b1 (re, im), w2 (re, im), b2 (re, im)
// The gated-conv backward keeps conv_weight[0..k), then conv_bias, instant_weight, instant_bias.
constexpr int kGatedExtraGrads = 3;
constexpr int kMaxKernelSize = 31;

// The spectral filter's parameters of one channel: w1 = (w1r, w1i) etc.
template <typename T>
struct Filter {
  T w1r, w1i, b1r, b1i, w2r, w2i, b2r, b2i;
};

// Reads channel c's filter from the (2, C) parameter arrays (row 0 real, row 1 imaginary).
template <typename T>
PYTAL_HOST_DEVICE inline Filter<T> load_filter(const T* w1, const T* b1, const T* w2,
                                               const T* b2, int64_t c, int64_t C) {
  return Filter<T>{w1[c], w1[C + c], b1[c], b1[C + c], w2[c], w2[C + c], b2[c], b2[C + c]};
}

// The pointwise functions are written without branches (min / max / compare-to-number):
// their inputs are data-dependent, and on the CPU a mispredicted branch per element cost more
// than the arithmetic.
template <typename T>
PYTAL_HOST_DEVICE inline T relu_of(T x) { return max_of(x, T(0)); }

// 1 where x > 0, else 0 (the slope of relu, as torch takes it).
template <typename T>
PYTAL_HOST_DEVICE inline T positive(T x) { return static_cast<T>(x > T(0)); }

// x - clamp(x, -lambd, lambd): x - lambd above lambd, x + lambd below -lambd, exactly 0 between.
template <typename T>
PYTAL_HOST_DEVICE inline T softshrink_of(T x, T lambd) {
  return x - min_of(max_of(x, -lambd), lambd);
}

template <typename T>
PYTAL_HOST_DEVICE inline T softshrink_slope(T x, T lambd) {
  return static_cast<T>(x > lambd) + static_cast<T>(x < -lambd);
}

// Frequency k of a length-T real signal is its own conjugate (DC, and Nyquist for even T):
// irfft ignores its imaginary part and it counts once (not twice) in the inverse transform.
PYTAL_HOST_DEVICE inline bool self_conjugate(int64_t k, int64_t T) {
  return k == 0 || (T % 2 == 0 && 2 * k == T);
}

// Intermediate values of the filter at one frequency.
template <typename T>
struct FilterState {
  T z1r, z1i;  // cmul(U, w1) + b1
  T hr, hi;    // relu(z1)
  T z2r, z2i;  // cmul(h, w2) + b2
  T wr, wi;    // W = softshrink(z2)
};

template <typename T>
PYTAL_HOST_DEVICE inline FilterState<T> filter_state(T ur, T ui, const Filter<T>& p, T lambd) {
  FilterState<T> s;
  s.z1r = ur * p.w1r - ui * p.w1i + p.b1r;
  s.z1i = ui * p.w1r + ur * p.w1i + p.b1i;
  s.hr = relu_of(s.z1r);
  s.hi = relu_of(s.z1i);
  s.z2r = s.hr * p.w2r - s.hi * p.w2i + p.b2r;
  s.z2i = s.hi * p.w2r + s.hr * p.w2i + p.b2i;
  s.wr = softshrink_of(s.z2r, lambd);
  s.wi = softshrink_of(s.z2i, lambd);
  return s;
}

// P = U * W(U) at a frequency that is not self-conjugate (orthonormal U).
template <typename T>
PYTAL_HOST_DEVICE inline void filter_product(T ur, T ui, const Filter<T>& p, T lambd, T& pr,
                                             T& pi) {
  const FilterState<T> s = filter_state(ur, ui, p, lambd);
  pr = ur * s.wr - ui * s.wi;
  pi = ur * s.wi + ui * s.wr;
}

// Forward at frequency k, in place: spec[0..1] holds U * in_scale on entry (in_scale turns an
// unnormalised transform into the orthonormal one) and P * out_scale on exit.
template <typename T>
PYTAL_HOST_DEVICE inline void filter_forward(T* spec, int64_t k, int64_t T_len,
                                             const Filter<T>& p, T lambd, T in_scale,
                                             T out_scale) {
  T pr, pi;
  filter_product(spec[0] * in_scale, spec[1] * in_scale, p, lambd, pr, pi);
  spec[0] = pr * out_scale;
  spec[1] = self_conjugate(k, T_len) ? T(0) : pi * out_scale;
}

// Vector-Jacobian product of the filter at one frequency: from U and dL/dP, dL/dU (du_r, du_i)
// and the filter parameters' gradient contributions, in the order of kFilterGrads.
template <typename T>
struct FilterVjp {
  T du_r, du_i;
  T param[kFilterGrads];
};

template <typename T>
PYTAL_HOST_DEVICE inline FilterVjp<T> filter_vjp(T ur, T ui, T dpr, T dpi, const Filter<T>& p,
                                                 T lambd) {
  const FilterState<T> s = filter_state(ur, ui, p, lambd);
  FilterVjp<T> v;
  // P = U * W
  v.du_r = dpr * s.wr + dpi * s.wi;
  v.du_i = dpi * s.wr - dpr * s.wi;
  // W = softshrink(z2)
  const T dz2r = (dpr * ur + dpi * ui) * softshrink_slope(s.z2r, lambd);
  const T dz2i = (dpi * ur - dpr * ui) * softshrink_slope(s.z2i, lambd);
  // z2 = cmul(h, w2) + b2
  v.param[4] = dz2r * s.hr + dz2i * s.hi;
  v.param[5] = dz2i * s.hr - dz2r * s.hi;
  v.param[6] = dz2r;
  v.param[7] = dz2i;
  const T dz1r = (dz2r * p.w2r + dz2i * p.w2i) * positive(s.z1r);
  const T dz1i = (dz2i * p.w2r - dz2r * p.w2i) * positive(s.z1i);
  // z1 = cmul(U, w1) + b1
  v.param[0] = dz1r * ur + dz1i * ui;
  v.param[1] = dz1i * ur - dz1r * ui;
  v.param[2] = dz1r;
  v.param[3] = dz1i;
  v.du_r += dz1r * p.w1r + dz1i * p.w1i;
  v.du_i += dz1i * p.w1r - dz1r * p.w1i;
  return v;
}

// Backward at frequency k. grad[0..1] holds rfft(dL/dg) * in_scale on entry; on exit it holds
// dL/dU / c_k * out_scale (c_k = 1 for self-conjugate frequencies, else 2: irfft's adjoint
// counts the others twice), so that irfft(grad) is the spectral part of dL/du. `spec` holds
// U * in_scale. Adds the filter's parameter gradients to acc[kFilterGrads].
template <typename T>
PYTAL_HOST_DEVICE inline void filter_backward(T* grad, const T* spec, int64_t k, int64_t T_len,
                                              const Filter<T>& p, T lambd, T in_scale,
                                              T out_scale, T* acc) {
  const bool self_conj = self_conjugate(k, T_len);
  const T c = self_conj ? T(1) : T(2);
  const FilterVjp<T> v = filter_vjp(spec[0] * in_scale, spec[1] * in_scale,
                                    grad[0] * in_scale * c, grad[1] * in_scale * c, p, lambd);
  for (int i = 0; i < kFilterGrads; ++i) acc[i] += v.param[i];
  const T scale = out_scale / c;
  grad[0] = v.du_r * scale;
  grad[1] = self_conj ? T(0) : v.du_i * scale;
}

// Depthwise correlation of one output: sum_j w[j] * xp[j], xp = the zero-padded input shifted
// so that xp[0] = u[t - k/2].
template <typename T>
PYTAL_HOST_DEVICE inline T conv_window(const T* xp, const T* w, int k) {
  T acc = T(0);
  for (int j = 0; j < k; ++j) acc += w[j] * xp[j];
  return acc;
}

// Its transpose: sum_j w[j] * dlp[2p - j] = sum_j w[j] * dl[s + p - j], dlp = the zero-padded
// dL/dl shifted so that dlp[0] = dl[s - p] (p = k/2): what every output owes input s.
template <typename T>
PYTAL_HOST_DEVICE inline T conv_transpose_window(const T* dlp, const T* w, int k) {
  T acc = T(0);
  for (int j = 0; j < k; ++j) acc += w[j] * dlp[k - 1 - j];
  return acc;
}

// out at one time step from u, the global branch g, the local branch l and the instant f.
template <typename T>
PYTAL_HOST_DEVICE inline T gated_forward(T u, T g, T l, T f, Gating gating) {
  if (gating == Gating::kPaper) {
    const T L = relu_of(g) * l + g;
    return u + L + relu_of(L) * f;
  }
  const T L = l * g;
  return u + g + L + f * L;
}

// Gradients of out with respect to g, l and f at one time step (dL/du's direct part is dout).
template <typename T>
PYTAL_HOST_DEVICE inline void gated_backward(T dout, T g, T l, T f, Gating gating, T& dg, T& dl,
                                             T& df) {
  if (gating == Gating::kPaper) {
    const T L = relu_of(g) * l + g;
    const T dL = dout * (T(1) + positive(L) * f);
    df = dout * relu_of(L);
    dg = dL * (T(1) + positive(g) * l);
    dl = dL * relu_of(g);
    return;
  }
  dg = dout * (T(1) + l + f * l);
  dl = dout * g * (T(1) + f);
  df = dout * l * g;
}

}  // namespace gmg
}  // namespace pytal
