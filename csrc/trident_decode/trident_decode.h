// Trident decoding math shared by the CPU and CUDA kernels (docs/ops.md, "trident_decode").
// Compiled by both the host compiler and nvcc: no torch headers.
//
// Layouts (all contiguous):
//   start_logits S, end_logits E: (B, Cb, T)      offset_logits O: (B, T, 2, K)
//   out: (B, T, Cb, 2)             stats: (B, T, Cb, 2, kStats) = (side, [mean, max, 1/sum])
// Side 0 (left): window logit i of (b, c, t) is S[b, c, t - (K-1) + i] (0 before position 0),
//                distance of bin i is K-1-i.
// Side 1 (right): window logit i is E[b, c, t + i] (0 past T-1), distance of bin i is i.
// Each function below computes one output element (or, in the index form's backward, one
// group of triples that only it writes), so the kernels are plain loops (CPU) or one thread
// per element or group (CUDA) over the same code: no atomics, deterministic.
#pragma once

#include "common/host_device.h"

#if defined(__CUDACC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#endif

namespace pytal {
namespace trident_decode {

// Values the forward keeps per (b, t, c, side) for the backward: the expected distance, the
// largest window logit and 1 / (sum of exp(logit - largest)). The backward's probabilities are
// exp(z - max) * inv_sum: kept apart, max and log(sum) cannot round into each other (a saved
// log-sum-exp max + log(sum) equals max for logits near 1e30, which doubled tied bins).
constexpr int64_t kStats = 3;

// ---- storage <-> accumulation type -------------------------------------------------------
template <typename T>
struct AccOf {
  using type = float;
};
template <>
struct AccOf<double> {
  using type = double;
};
template <typename T>
using acc_t = typename AccOf<T>::type;

// Acc is float for float/half/bfloat16 storage and double for double. Host code converts
// at::Half / at::BFloat16 with their own conversion operators; nvcc (built with torch's
// __CUDA_NO_HALF_CONVERSIONS__) needs the intrinsics.
template <typename Acc, typename T>
PYTAL_HOST_DEVICE inline Acc to_acc(T x) { return static_cast<Acc>(x); }
template <typename T, typename Acc>
PYTAL_HOST_DEVICE inline T from_acc(Acc x) { return static_cast<T>(x); }

#if defined(__CUDACC__)
template <>
__device__ __host__ inline float to_acc<float, __half>(__half x) { return __half2float(x); }
template <>
__device__ __host__ inline float to_acc<float, __nv_bfloat16>(__nv_bfloat16 x) {
  return __bfloat162float(x);
}
template <>
__device__ __host__ inline __half from_acc<__half, float>(float x) { return __float2half_rn(x); }
template <>
__device__ __host__ inline __nv_bfloat16 from_acc<__nv_bfloat16, float>(float x) {
  return __float2bfloat16_rn(x);
}
#endif

// ---- problem geometry ----------------------------------------------------------------------
struct Shape {
  int64_t batch;     // B
  int64_t classes;   // Cb
  int64_t length;    // T
  int64_t bins;      // K = num_bins + 1
};

// Position in the boundary-logit row read by bin i of position t on `side`.
PYTAL_HOST_DEVICE inline int64_t window_pos(int side, int64_t t, int64_t i, int64_t bins) {
  return side == 0 ? t - (bins - 1) + i : t + i;
}

// Distance (in feature steps) that bin i stands for on `side`.
template <typename Acc>
PYTAL_HOST_DEVICE inline Acc bin_distance(int side, int64_t i, int64_t bins) {
  return static_cast<Acc>(side == 0 ? bins - 1 - i : i);
}

// Boundary logit at position p of a row of length T, zero outside [0, T).
template <typename Acc, typename T>
PYTAL_HOST_DEVICE inline Acc padded_logit(const T* row, int64_t p, int64_t length) {
  return (p >= 0 && p < length) ? to_acc<Acc>(row[p]) : Acc(0);
}

template <typename T>
PYTAL_HOST_DEVICE inline const T* boundary_row(const T* logits, const Shape& s, int64_t b,
                                               int64_t c) {
  return logits + (b * s.classes + c) * s.length;
}

template <typename T>
PYTAL_HOST_DEVICE inline const T* offset_row(const T* offsets, const Shape& s, int64_t b,
                                             int64_t t, int side) {
  return offsets + ((b * s.length + t) * 2 + side) * s.bins;
}

// Flat index of (b, t, c) in the (B, T, Cb) grid of out / stats.
PYTAL_HOST_DEVICE inline int64_t btc_index(const Shape& s, int64_t b, int64_t t, int64_t c) {
  return (b * s.length + t) * s.classes + c;
}

// ---- forward -------------------------------------------------------------------------------
template <typename Acc>
struct Decoded {
  Acc mean;   // expected distance
  Acc top;        // largest of the K window logits
  Acc inv_total;  // 1 / (sum over the K bins of exp(logit - top)), in [1/K, 1]
};

// Logit of bin i of the window of (row, t) on `side`: boundary logit plus offset logit.
template <typename Acc, typename T>
PYTAL_HOST_DEVICE inline Acc window_logit(const T* row, const T* offset, int side, int64_t t,
                                          int64_t i, const Shape& s) {
  return padded_logit<Acc>(row, window_pos(side, t, i, s.bins), s.length) +
         to_acc<Acc>(offset[i]);
}

// Softmax over the K bins of one (b, t, c, side) and its expected distance. Two passes over
// K (max, then sum of exp and weighted sum): no (K,) buffer, finite for any finite logits.
template <typename Acc, typename T>
PYTAL_HOST_DEVICE inline Decoded<Acc> decode_one(const T* row, const T* offset, int side,
                                                 int64_t t, const Shape& s) {
  Acc top = negative_infinity<Acc>();
  for (int64_t i = 0; i < s.bins; ++i) {
    top = max_of(top, window_logit<Acc>(row, offset, side, t, i, s));
  }
  Acc total = 0, weighted = 0;
  for (int64_t i = 0; i < s.bins; ++i) {
    const Acc p = exp_of(window_logit<Acc>(row, offset, side, t, i, s) - top);
    total += p;
    weighted += p * bin_distance<Acc>(side, i, s.bins);
  }
  return {weighted / total, top, Acc(1) / total};
}

// Both sides of one (b, t, c): writes out_pair[side] and, when stats_pair is not null,
// stats_pair[side * kStats + {0: mean, 1: top, 2: inv_total}].
template <typename Acc, typename T>
PYTAL_HOST_DEVICE inline void decode_sides(const T* start, const T* end, const T* offsets,
                                           const Shape& s, int64_t b, int64_t t, int64_t c,
                                           T* out_pair, Acc* stats_pair) {
  for (int side = 0; side < 2; ++side) {
    const T* row = boundary_row(side == 0 ? start : end, s, b, c);
    const Decoded<Acc> d = decode_one<Acc>(row, offset_row(offsets, s, b, t, side), side, t, s);
    out_pair[side] = from_acc<T>(d.mean);
    if (stats_pair != nullptr) {
      stats_pair[side * kStats + 0] = d.mean;
      stats_pair[side * kStats + 1] = d.top;
      stats_pair[side * kStats + 2] = d.inv_total;
    }
  }
}

// Forward of one (b, t, c): writes out[(b,t,c), side] and stats[(b,t,c), side, :].
template <typename Acc, typename T>
PYTAL_HOST_DEVICE inline void forward_at(const T* start, const T* end, const T* offsets,
                                         const Shape& s, int64_t b, int64_t t, int64_t c,
                                         T* out, Acc* stats) {
  const int64_t at = btc_index(s, b, t, c);
  decode_sides<Acc>(start, end, offsets, s, b, t, c, out + at * 2,
                    stats != nullptr ? stats + at * 2 * kStats : nullptr);
}

// ---- backward ------------------------------------------------------------------------------
// The saved values of one (b, t, c, side): stats[at * kStats + {0, 1, 2}].
template <typename Acc>
struct Saved {
  Acc mean, top, inv_total;
};

template <typename Acc>
PYTAL_HOST_DEVICE inline Saved<Acc> saved_at(const Acc* stats, int64_t at) {
  return {stats[at * kStats + 0], stats[at * kStats + 1], stats[at * kStats + 2]};
}

// With p = softmax(z) = exp(z - top) * inv_total and mean = sum_i p_i * d_i,
// d mean / d z_i = p_i * (d_i - mean).
template <typename Acc>
PYTAL_HOST_DEVICE inline Acc logit_grad(Acc z, const Saved<Acc>& saved, Acc distance,
                                        Acc grad_mean) {
  return grad_mean * (exp_of(z - saved.top) * saved.inv_total) * (distance - saved.mean);
}

// Backward of one (b, t, c, side) in scatter form, for kernels that own the gradient rows
// they write (the CPU kernel): adds each bin's logit gradient to grad_row[p] (the boundary
// logit it read, when inside [0, T)) and to grad_offset_row[i].
template <typename Acc, typename T>
PYTAL_HOST_DEVICE inline void scatter_window_grad(const T* row, const T* offset, int side,
                                                  int64_t t, const Shape& s,
                                                  const Saved<Acc>& saved, Acc grad_mean,
                                                  Acc* grad_row,
                                                  Acc* grad_offset_row) {
  for (int64_t i = 0; i < s.bins; ++i) {
    const int64_t p = window_pos(side, t, i, s.bins);
    const bool inside = p >= 0 && p < s.length;
    const Acc z = (inside ? to_acc<Acc>(row[p]) : Acc(0)) + to_acc<Acc>(offset[i]);
    const Acc g = logit_grad(z, saved, bin_distance<Acc>(side, i, s.bins), grad_mean);
    if (inside) grad_row[p] += g;
    grad_offset_row[i] += g;
  }
}

// Gradient of the boundary logit at position p of row (b, c) on `side`: that logit is bin
// i = p - t + (K-1) (left) or i = p - t (right) of the K positions t whose window covers p.
template <typename Acc, typename T>
PYTAL_HOST_DEVICE inline Acc boundary_grad_at(const T* grad_out, const T* logits,
                                              const T* offsets, const Acc* stats,
                                              const Shape& s, int side, int64_t b, int64_t c,
                                              int64_t p) {
  const Acc logit = to_acc<Acc>(boundary_row(logits, s, b, c)[p]);
  Acc acc = 0;
  for (int64_t i = 0; i < s.bins; ++i) {
    const int64_t t = side == 0 ? p + (s.bins - 1) - i : p - i;  // window_pos(side, t, i) == p
    if (t < 0 || t >= s.length) continue;
    const int64_t at = btc_index(s, b, t, c) * 2 + side;
    const Acc z = logit + to_acc<Acc>(offset_row(offsets, s, b, t, side)[i]);
    acc += logit_grad(z, saved_at(stats, at), bin_distance<Acc>(side, i, s.bins),
                      to_acc<Acc>(grad_out[at]));
  }
  return acc;
}

// Gradient of offset logit O[b, t, side, i]: it is added to the window logit of every class.
template <typename Acc, typename T>
PYTAL_HOST_DEVICE inline Acc offset_grad_at(const T* grad_out, const T* start, const T* end,
                                            const T* offsets, const Acc* stats, const Shape& s,
                                            int side, int64_t b, int64_t t, int64_t i) {
  const Acc offset = to_acc<Acc>(offset_row(offsets, s, b, t, side)[i]);
  const int64_t p = window_pos(side, t, i, s.bins);
  const Acc distance = bin_distance<Acc>(side, i, s.bins);
  const T* logits = side == 0 ? start : end;
  Acc acc = 0;
  for (int64_t c = 0; c < s.classes; ++c) {
    const int64_t at = btc_index(s, b, t, c) * 2 + side;
    const Acc z = padded_logit<Acc>(boundary_row(logits, s, b, c), p, s.length) + offset;
    acc += logit_grad(z, saved_at(stats, at), distance, to_acc<Acc>(grad_out[at]));
  }
  return acc;
}

// ---- index form ----------------------------------------------------------------------------
// Layouts: batch, cls, pos (N,); out (N, 2); stats (N, 2, kStats) = (side, [mean, max, 1/sum]);
// logit_grads (N, 2, K): d out[n, side] / d (window logit i), times grad_out[n, side].

// Decoding of the chosen triple n = (b, c, t): writes out[n, 0..1] and, when stats is not
// null, stats[n].
template <typename Acc, typename T>
PYTAL_HOST_DEVICE inline void index_at(const T* start, const T* end, const T* offsets,
                                       const Shape& s, int64_t b, int64_t c, int64_t t,
                                       int64_t n, T* out, Acc* stats) {
  decode_sides<Acc>(start, end, offsets, s, b, t, c, out + 2 * n,
                    stats != nullptr ? stats + n * 2 * kStats : nullptr);
}

// Backward, step 1: the K window-logit gradients of triple n on `side`, into its own slice
// of logit_grads (no sharing between triples, whatever the duplicates).
template <typename Acc, typename T>
PYTAL_HOST_DEVICE inline void index_logit_grads_at(const T* grad_out, const T* logits,
                                                   const T* offsets, const Acc* stats,
                                                   const Shape& s, int64_t b, int64_t c,
                                                   int64_t t, int64_t n, int side,
                                                   Acc* logit_grads) {
  const T* row = boundary_row(logits, s, b, c);
  const T* offset = offset_row(offsets, s, b, t, side);
  const Saved<Acc> saved = saved_at(stats, n * 2 + side);
  const Acc grad_mean = to_acc<Acc>(grad_out[n * 2 + side]);
  Acc* g = logit_grads + (n * 2 + side) * s.bins;
  for (int64_t i = 0; i < s.bins; ++i) {
    g[i] = logit_grad(window_logit<Acc>(row, offset, side, t, i, s), saved,
                      bin_distance<Acc>(side, i, s.bins), grad_mean);
  }
}

// Backward, step 2: adds the window gradients of the triples order[lo..hi) on `side` to
// grad_row, the (T,) gradient row of their boundary logits. The caller passes every triple
// of one (b, c) row, in a fixed order, and is the only writer of that row: no atomics, the
// same sums in the same order on every run.
template <typename Acc>
PYTAL_HOST_DEVICE inline void index_boundary_grad_group(const Acc* logit_grads,
                                                        const int64_t* order,
                                                        const int64_t* pos, int64_t lo,
                                                        int64_t hi, int side, const Shape& s,
                                                        Acc* grad_row) {
  for (int64_t j = lo; j < hi; ++j) {
    const int64_t n = order[j], t = pos[n];
    const Acc* g = logit_grads + (n * 2 + side) * s.bins;
    for (int64_t i = 0; i < s.bins; ++i) {
      const int64_t p = window_pos(side, t, i, s.bins);
      if (p >= 0 && p < s.length) grad_row[p] += g[i];
    }
  }
}

// Backward, step 3: gradient of offset logit O[b, t, side, i], where order[lo..hi) are all
// the triples at (b, t) (any class), summed in that order.
template <typename Acc>
PYTAL_HOST_DEVICE inline Acc index_offset_grad_group(const Acc* logit_grads,
                                                     const int64_t* order, int64_t lo,
                                                     int64_t hi, int side, int64_t i,
                                                     int64_t bins) {
  Acc acc = 0;
  for (int64_t j = lo; j < hi; ++j) acc += logit_grads[(order[j] * 2 + side) * bins + i];
  return acc;
}

}  // namespace trident_decode
}  // namespace pytal
