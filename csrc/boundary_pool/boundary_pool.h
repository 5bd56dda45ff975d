// Interval pooling math shared by the CPU and CUDA kernels of boundary_pool and segment_pool
// (docs/ops.md, "boundary_pool"). Compiled by both the host compiler and nvcc: no torch
// headers.
//
// Both ops pool a feature row row[0, n) over closed integer intervals [lo, hi] (already
// truncated and clamped to [0, n-1] by the host code, lo <= hi). boundary_pool is the max mode
// with two interval groups: channels c < C/2 use group 0 (start region), the others group 1.
//
// Max: the value of the first argmax, where NaN counts as larger than any number (as torch.max
// does), so the gradient goes to one well-defined position. Long intervals are answered from a
// sparse table (argmax of every window of length 2^j, built once per row in O(n log n)) with two
// lookups; rows whose intervals are short in total are scanned directly instead.
// Mean: differences of a float64 prefix sum.
#pragma once

#include "common/host_device.h"

namespace pytal {
namespace boundary_pool {

enum class Mode : int { kMax = 0, kMean = 1 };

// Sizes of one call: features (batch, channels, length), intervals per row K. Channel c pools
// over interval group group_of(c, channels, groups): 2 groups for boundary_pool (start / end
// regions), 1 for segment_pool.
struct Problem {
  int64_t batch = 0;
  int64_t channels = 0;
  int64_t length = 0;     // T
  int64_t intervals = 0;  // K
  int groups = 1;

  PYTAL_HOST_DEVICE int64_t rows() const { return batch * channels; }
  PYTAL_HOST_DEVICE bool empty() const { return batch == 0 || channels == 0 || intervals == 0; }
};

// Type in which feature values are compared and gradients summed: float for fp32/fp16/bf16,
// double for fp64, with the conversions from and to the storage type T. The CUDA kernels
// specialise it for __half and __nv_bfloat16, whose implicit conversions torch disables.
template <typename T>
struct Compute {
  using type = float;
  PYTAL_HOST_DEVICE static type load(T x) { return static_cast<type>(x); }
  PYTAL_HOST_DEVICE static T store(type x) { return static_cast<T>(x); }
};
template <>
struct Compute<double> {
  using type = double;
  PYTAL_HOST_DEVICE static double load(double x) { return x; }
  PYTAL_HOST_DEVICE static double store(double x) { return x; }
};

template <typename T>
PYTAL_HOST_DEVICE inline typename Compute<T>::type value_at(const T* row, int i) {
  return Compute<T>::load(row[i]);
}

// A float64 result (a mean) in the storage type, through the compute type.
template <typename T>
PYTAL_HOST_DEVICE inline T store_double(double v) {
  return Compute<T>::store(static_cast<typename Compute<T>::type>(v));
}

// a ranks strictly above b in the max order: larger, or NaN against a number.
template <typename V>
PYTAL_HOST_DEVICE inline bool beats(V a, V b) {
  return a > b || (a != a && b == b);
}

// floor(log2(n)) for n >= 1.
PYTAL_HOST_DEVICE inline int floor_log2(int n) {
#if defined(__CUDA_ARCH__)
  return 31 - __clz(n);
#else
  return 31 - __builtin_clz(static_cast<unsigned>(n));
#endif
}

// Levels 1 .. table_levels(n) are stored (level 0, the identity, is not): 0 when n == 1.
PYTAL_HOST_DEVICE inline int table_levels(int n) { return floor_log2(n); }

// Of positions i < j, the one to keep: j only when its value ranks strictly above i's, so
// ties go to the lower position.
template <typename T>
PYTAL_HOST_DEVICE inline int better_index(const T* row, int i, int j) {
  return beats(value_at(row, j), value_at(row, i)) ? j : i;
}

// First argmax of row[lo, hi] by a direct scan: O(hi - lo).
template <typename T>
PYTAL_HOST_DEVICE inline int scan_argmax(const T* row, int lo, int hi) {
  int best = lo;
  auto best_value = value_at(row, lo);
  for (int t = lo + 1; t <= hi; ++t) {
    const auto v = value_at(row, t);
    if (beats(v, best_value)) {
      best = t;
      best_value = v;
    }
  }
  return best;
}

// Sparse table of a row of length n: level j >= 1 holds, at table[(j - 1) * n + i], the first
// argmax of row[i, i + 2^j), for i + 2^j <= n. Entry i of `level` from level - 1.
template <typename T, typename Index>
PYTAL_HOST_DEVICE inline Index table_entry(const T* row, const Index* table, int n, int level,
                                           int i) {
  const int half = 1 << (level - 1);
  if (level == 1) return static_cast<Index>(better_index(row, i, i + half));
  const Index* prev = table + (level - 2) * n;
  return static_cast<Index>(better_index(row, int(prev[i]), int(prev[i + half])));
}

// First argmax of row[lo, hi] from the sparse table: two overlapping windows of length
// 2^floor(log2(len)). When the right window's argmax precedes the left one's, it lies in the
// left window too and ranks strictly below it, so better_index's tie rule stays correct.
template <typename T, typename Index>
PYTAL_HOST_DEVICE inline int table_argmax(const T* row, const Index* table, int n, int lo,
                                          int hi) {
  const int level = floor_log2(hi - lo + 1);
  if (level == 0) return lo;
  const Index* windows = table + (level - 1) * n;
  return better_index(row, int(windows[lo]), int(windows[hi - (1 << level) + 1]));
}

// Whether building the table (about n * levels steps, plus two lookups per interval) is
// cheaper than scanning every interval (total_length steps) for a row with k intervals.
PYTAL_HOST_DEVICE inline bool prefer_table(int n, int64_t total_length, int64_t k) {
  return total_length > int64_t(n) * table_levels(n) + 2 * k;
}

// Mean of row[lo, hi] from prefix[i] = sum of row[0, i) in float64.
PYTAL_HOST_DEVICE inline double interval_mean(const double* prefix, int lo, int hi) {
  return (prefix[hi + 1] - prefix[lo]) / double(hi - lo + 1);
}

// Interval group of channel c among C channels split into `groups` equal blocks.
PYTAL_HOST_DEVICE inline int group_of(int64_t c, int64_t channels, int groups) {
  return groups == 1 ? 0 : static_cast<int>(c / (channels / groups));
}

// The intervals of one feature row, read from int32 bounds (B, K, groups, 2): interval k is
// [lo(k), hi(k)].
struct RowIntervals {
  const int32_t* base;  // bounds of interval 0 of this row's group
  int64_t stride;       // int32 elements between consecutive intervals (2 * groups)
  int64_t count;        // K

  PYTAL_HOST_DEVICE int lo(int64_t k) const { return base[k * stride]; }
  PYTAL_HOST_DEVICE int hi(int64_t k) const { return base[k * stride + 1]; }
  PYTAL_HOST_DEVICE int length(int64_t k) const { return hi(k) - lo(k) + 1; }
};

// Row r = b * channels + c of features (B, C, T).
PYTAL_HOST_DEVICE inline RowIntervals intervals_of(const int32_t* bounds, const Problem& p,
                                                   int64_t row) {
  const int64_t b = row / p.channels;
  const int g = group_of(row % p.channels, p.channels, p.groups);
  return {bounds + (b * p.intervals * p.groups + g) * 2, 2 * int64_t(p.groups), p.intervals};
}

}  // namespace boundary_pool
}  // namespace pytal
