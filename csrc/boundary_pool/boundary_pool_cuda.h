// Launch functions of the boundary_pool / segment_pool CUDA kernels: raw pointers and sizes
// only, so that the .cu file needs no torch headers. T is float, double, __half or
// __nv_bfloat16. `bounds` is the int32 (B, K, groups, 2) interval tensor of
// boundary_pool_host.h's interval_bounds; features and outputs are contiguous.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "boundary_pool/boundary_pool.h"

namespace pytal {
namespace boundary_pool {

// out (B, C, K). Rows that fit in shared memory (row, sparse table or prefix sums) take a
// block per row; longer rows a warp per output.
template <typename T>
cudaError_t launch_pool_forward(const T* features, const int32_t* bounds, const Problem& p,
                                Mode mode, T* out, int device, cudaStream_t stream);

// Whether the backward takes the shared-memory row kernel (*rows) or the long-row path.
template <typename T>
cudaError_t backward_uses_rows(const Problem& p, Mode mode, int device, bool* rows);

// grad_in (B, C, T) = gradient of the pooled outputs for features by the row kernel (only when
// backward_uses_rows): every position sums its contributions in ascending k, without atomics.
template <typename T>
cudaError_t launch_pool_backward_rows(const T* features, const T* grad_out,
                                      const int32_t* bounds, const Problem& p, Mode mode,
                                      T* grad_in, int device, cudaStream_t stream);

// argmax (B * C, K) int32: the first argmax position of every output (max mode, long rows).
template <typename T>
cudaError_t launch_pool_argmax(const T* features, const int32_t* bounds, const Problem& p,
                               int32_t* argmax, cudaStream_t stream);

// out[i] for i < total = sum of values[order[j]] over the j with sorted_keys[j] == i, in
// ascending j, accumulated in Compute<T>::type. sorted_keys (count,) ascending.
template <typename T>
cudaError_t launch_sum_sorted(const T* values, const int64_t* sorted_keys, const int64_t* order,
                              int64_t count, int64_t total, T* out, cudaStream_t stream);

}  // namespace boundary_pool
}  // namespace pytal
