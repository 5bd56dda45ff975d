// Host-side pieces of boundary_pool / segment_pool shared by the CPU and CUDA registrations:
// argument checks, the conversion of segments into clamped integer intervals, and output
// allocation. Device-agnostic (ATen ops only).
#pragma once

#include <ATen/ATen.h>

#include <string_view>

#include "boundary_pool/boundary_pool.h"

namespace pytal {
namespace boundary_pool {

// "max" or "mean"; anything else raises naming `mode`.
Mode parse_mode(std::string_view mode);

// Checks the shapes, dtypes and devices of features (B, C, T) and segments (B, K, 2 * groups)
// and returns the problem sizes. `op` names the caller in messages. Segment values are
// checked by interval_bounds, which reads them anyway.
Problem check_inputs(const at::Tensor& features, const at::Tensor& segments, int groups,
                     const char* op);

// grad_output must be (B, C, K) with the dtype and device of features.
void check_grad(const at::Tensor& grad_output, const at::Tensor& features, const Problem& p);

// Segments -> int32 (B, K, groups, 2) [lo, hi]: truncated toward zero, then clamped to
// [0, T - 1], contiguous, on the segments' device. Requires p.length >= 1. NaN, or lo > hi
// after truncation, raise ValueError on the CPU and fail a device-side assertion on CUDA (no
// host synchronisation).
at::Tensor interval_bounds(const at::Tensor& segments, const Problem& p, const char* op);

}  // namespace boundary_pool
}  // namespace pytal
