// Launch functions of the trident_decode CUDA kernels: raw pointers and sizes only, so that
// the .cu file needs no torch headers (fast nvcc builds). T is float, double, __half or
// __nv_bfloat16; the accumulation type is acc_t<T> (double for double, float otherwise).
// Layouts are those of trident_decode.h; every pointer is device memory, contiguous.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "trident_decode/trident_decode.h"

namespace pytal {
namespace trident_decode {

// out (B, T, Cb, 2) and stats (B, T, Cb, 2, kStats) (stats may be null: not written).
template <typename T>
cudaError_t launch_forward(const T* start, const T* end, const T* offsets, const Shape& shape,
                           T* out, acc_t<T>* stats, cudaStream_t stream);

// grad_start, grad_end (B, Cb, T) and grad_offset (B, T, 2, K), all written (no zeroing).
template <typename T>
cudaError_t launch_backward(const T* grad_out, const T* start, const T* end, const T* offsets,
                            const acc_t<T>* stats, const Shape& shape, T* grad_start,
                            T* grad_end, T* grad_offset, cudaStream_t stream);

// out (N, 2) for the triples (batch[n], cls[n], pos[n]), indices already checked; stats
// (N, 2, 2), or null: not written.
template <typename T>
cudaError_t launch_index(const T* start, const T* end, const T* offsets, const Shape& shape,
                         const int64_t* batch, const int64_t* cls, const int64_t* pos,
                         int64_t n, T* out, acc_t<T>* stats, cudaStream_t stream);

// The index form's triples (device pointers, (count,) each).
struct IndexTriples {
  const int64_t* batch;
  const int64_t* cls;
  const int64_t* pos;
  int64_t count;
};

// Groups of triples (see TripleGroups in trident_decode_host.h): group g is
// order[starts[g] .. starts[g + 1]).
struct IndexGroupsView {
  const int64_t* order;
  const int64_t* starts;
  int64_t count;
};

// Backward of the index form. logit_grads (N, 2, K) is scratch; grad_start / grad_end
// (B, Cb, T) in the accumulation type and grad_offset (B, T, 2, K) must be zeroed: only the
// rows that triples read are written. rows groups the triples by (b, c), positions by (b, t).
template <typename T>
cudaError_t launch_index_backward(const T* grad_out, const T* start, const T* end,
                                  const T* offsets, const acc_t<T>* stats, const Shape& shape,
                                  const IndexTriples& triples, const IndexGroupsView& rows,
                                  const IndexGroupsView& positions, acc_t<T>* logit_grads,
                                  acc_t<T>* grad_start, acc_t<T>* grad_end, T* grad_offset,
                                  cudaStream_t stream);

}  // namespace trident_decode
}  // namespace pytal
