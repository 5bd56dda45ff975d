// CPU kernels of boundary_pool / segment_pool: feature rows (b, c) in parallel
// (at::parallel_for); each row answers its K intervals with the shared math of
// boundary_pool.h (sparse table or direct scan for max, float64 prefix sums for mean).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "boundary_pool/boundary_pool.h"
#include "boundary_pool/boundary_pool_host.h"

namespace pytal {
namespace boundary_pool {
namespace {

// Per-thread scratch reused across rows.
struct Scratch {
  std::vector<int32_t> table;
  std::vector<int32_t> argmax;
  std::vector<double> sums;  // prefix sums (forward mean) or a difference array (backward)
};

// First argmax of every interval of one row into s.argmax, by a sparse table or direct scans,
// whichever costs fewer steps for this row.
template <typename T>
void row_argmax(const T* row, int n, const RowIntervals& iv, Scratch& s) {
  s.argmax.resize(iv.count);
  int64_t total_length = 0;
  for (int64_t k = 0; k < iv.count; ++k) total_length += iv.length(k);
  if (!prefer_table(n, total_length, iv.count)) {
    for (int64_t k = 0; k < iv.count; ++k) s.argmax[k] = scan_argmax(row, iv.lo(k), iv.hi(k));
    return;
  }
  const int levels = table_levels(n);
  s.table.resize(int64_t(levels) * n);
  for (int level = 1; level <= levels; ++level) {
    int32_t* out = s.table.data() + int64_t(level - 1) * n;
    const int last = n - (1 << level);
    for (int i = 0; i <= last; ++i) out[i] = table_entry(row, s.table.data(), n, level, i);
  }
  for (int64_t k = 0; k < iv.count; ++k) {
    s.argmax[k] = table_argmax(row, s.table.data(), n, iv.lo(k), iv.hi(k));
  }
}

template <typename T>
void forward_row(const T* row, int n, const RowIntervals& iv, Mode mode, Scratch& s, T* out) {
  if (mode == Mode::kMax) {
    row_argmax(row, n, iv, s);
    for (int64_t k = 0; k < iv.count; ++k) out[k] = row[s.argmax[k]];
    return;
  }
  s.sums.assign(n + 1, 0.0);
  for (int t = 0; t < n; ++t) s.sums[t + 1] = s.sums[t] + static_cast<double>(row[t]);
  for (int64_t k = 0; k < iv.count; ++k) {
    out[k] = store_double<T>(interval_mean(s.sums.data(), iv.lo(k), iv.hi(k)));
  }
}

// Max: grad_row[argmax(k)] += grad[k], summed in ascending k in the compute type (the order
// the CUDA kernel uses too). Mean: grad[k] / length spread over [lo, hi] through a float64
// difference array, O(K + T).
template <typename T>
void backward_row(const T* row, const T* grad, int n, const RowIntervals& iv, Mode mode,
                  Scratch& s, T* grad_row) {
  if (mode == Mode::kMax) {
    row_argmax(row, n, iv, s);
    std::vector<typename Compute<T>::type> acc(n, 0);
    for (int64_t k = 0; k < iv.count; ++k) {
      acc[s.argmax[k]] += Compute<T>::load(grad[k]);
    }
    for (int t = 0; t < n; ++t) grad_row[t] = Compute<T>::store(acc[t]);
    return;
  }
  s.sums.assign(n + 1, 0.0);
  for (int64_t k = 0; k < iv.count; ++k) {
    const double share = static_cast<double>(grad[k]) / double(iv.length(k));
    s.sums[iv.lo(k)] += share;
    s.sums[iv.hi(k) + 1] -= share;
  }
  double running = 0.0;
  for (int t = 0; t < n; ++t) {
    running += s.sums[t];
    grad_row[t] = store_double<T>(running);
  }
}

// Rows per task so that a task does a few tens of thousands of steps.
int64_t grain_for(const Problem& p) {
  const int64_t per_row = p.length * (table_levels(int(std::max<int64_t>(p.length, 1))) + 1) +
                          p.intervals;
  return std::max<int64_t>(1, 32768 / std::max<int64_t>(per_row, 1));
}

at::Tensor pool_forward(const at::Tensor& features, const at::Tensor& segments, int groups,
                        Mode mode, const char* op) {
  const Problem p = check_inputs(features, segments, groups, op);
  auto out = at::empty({p.batch, p.channels, p.intervals}, features.options());
  if (p.empty()) return out;
  const auto feats = features.contiguous();
  const auto bounds = interval_bounds(segments, p, op);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, feats.scalar_type(),
                                  "boundary_pool_forward_cpu", [&] {
    const scalar_t* x = feats.data_ptr<scalar_t>();
    const int32_t* bnd = bounds.data_ptr<int32_t>();
    scalar_t* y = out.data_ptr<scalar_t>();
    at::parallel_for(0, p.rows(), grain_for(p), [&](int64_t first, int64_t last) {
      Scratch s;
      for (int64_t r = first; r < last; ++r) {
        forward_row(x + r * p.length, int(p.length), intervals_of(bnd, p, r), mode, s,
                    y + r * p.intervals);
      }
    });
  });
  return out;
}

at::Tensor pool_backward(const at::Tensor& grad_output, const at::Tensor& features,
                         const at::Tensor& segments, int groups, Mode mode, const char* op) {
  const Problem p = check_inputs(features, segments, groups, op);
  check_grad(grad_output, features, p);
  if (p.empty()) return at::zeros_like(features, at::MemoryFormat::Contiguous);
  auto grad_in = at::empty_like(features, at::MemoryFormat::Contiguous);
  const auto feats = features.contiguous();
  const auto grad = grad_output.contiguous();
  const auto bounds = interval_bounds(segments, p, op);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, feats.scalar_type(),
                                  "boundary_pool_backward_cpu", [&] {
    const scalar_t* x = feats.data_ptr<scalar_t>();
    const scalar_t* g = grad.data_ptr<scalar_t>();
    const int32_t* bnd = bounds.data_ptr<int32_t>();
    scalar_t* gx = grad_in.data_ptr<scalar_t>();
    at::parallel_for(0, p.rows(), grain_for(p), [&](int64_t first, int64_t last) {
      Scratch s;
      for (int64_t r = first; r < last; ++r) {
        backward_row(x + r * p.length, g + r * p.intervals, int(p.length),
                     intervals_of(bnd, p, r), mode, s, gx + r * p.length);
      }
    });
  });
  return grad_in;
}

at::Tensor boundary_pool_cpu(const at::Tensor& features, const at::Tensor& segments) {
  return pool_forward(features, segments, 2, Mode::kMax, "boundary_pool");
}

at::Tensor boundary_pool_backward_cpu(const at::Tensor& grad_output, const at::Tensor& features,
                                      const at::Tensor& segments) {
  return pool_backward(grad_output, features, segments, 2, Mode::kMax, "boundary_pool");
}

at::Tensor segment_pool_cpu(const at::Tensor& features, const at::Tensor& segments,
                            std::string_view mode) {
  return pool_forward(features, segments, 1, parse_mode(mode), "segment_pool");
}

at::Tensor segment_pool_backward_cpu(const at::Tensor& grad_output, const at::Tensor& features,
                                     const at::Tensor& segments, std::string_view mode) {
  return pool_backward(grad_output, features, segments, 1, parse_mode(mode), "segment_pool");
}

}  // namespace

TORCH_LIBRARY_IMPL(pytal, CPU, m) {
  m.impl("boundary_pool", &boundary_pool_cpu);
  m.impl("boundary_pool_backward", &boundary_pool_backward_cpu);
  m.impl("segment_pool", &segment_pool_cpu);
  m.impl("segment_pool_backward", &segment_pool_backward_cpu);
}

}  // namespace boundary_pool
}  // namespace pytal
