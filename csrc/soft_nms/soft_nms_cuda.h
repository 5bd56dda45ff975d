// Launch function of the soft_nms CUDA kernel: raw pointers and sizes only, so that the .cu
// file needs no torch headers (fast nvcc builds) and the kernel is reusable outside torch.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "soft_nms/soft_nms.h"

namespace pytal {
namespace soft_nms {

// Bits of the launch's value_errors word: what the kernel found while loading the candidates.
constexpr int kNonFiniteScore = 1;
constexpr int kNonFiniteSegment = 2;
constexpr int kReversedSegment = 4;  // end < start

// Bytes of global workspace the launch needs (*bytes): 0 when every group fits in shared
// memory. The first call per device sets the kernel's shared-memory limit (see cuda_launch.cuh).
template <typename T>
cudaError_t cuda_workspace_bytes(int64_t num_candidates, int64_t max_group_size, int device,
                                 int64_t* bytes);

// One launch for all groups (a block per group). Inputs (device memory): segments (N, 2),
// scores (N,), order (N,) and offsets (G + 1,) as described by soft_nms_host.h's Partition.
// Outputs: out_pos / out_score (N,), out_count (G,), and *value_errors (zeroed by the caller)
// ORed with the k* bits above for invalid candidates (the other outputs are then meaningless).
// `workspace` holds cuda_workspace_bytes() bytes (may be null when that is 0).
template <typename T>
cudaError_t launch_soft_nms(const T* segments, const T* scores, const int64_t* order,
                            const int64_t* offsets, int64_t num_groups, int64_t max_group_size,
                            const Params<T>& params, void* workspace, int64_t* out_pos,
                            T* out_score, int64_t* out_count, int* value_errors, int device,
                            cudaStream_t stream);

}  // namespace soft_nms
}  // namespace pytal
