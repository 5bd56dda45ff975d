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

// Bytes of global workspace launch_pool_backward needs (*bytes; 0 on the shared-memory path).
template <typename T>
cudaError_t backward_workspace_bytes(const Problem& p, Mode mode, int device, int64_t* bytes);

// grad_in (B, C, T) = gradient of the pooled outputs for features, deterministic: every
// position sums its contributions in ascending k, without atomics.
template <typename T>
cudaError_t launch_pool_backward(const T* features, const T* grad_out, const int32_t* bounds,
                                 const Problem& p, Mode mode, void* workspace, T* grad_in,
                                 int device, cudaStream_t stream);

}  // namespace boundary_pool
}  // namespace pytal
