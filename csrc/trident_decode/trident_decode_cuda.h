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

// out (B, T, Cb, 2) and stats (B, T, Cb, 2, 2).
template <typename T>
cudaError_t launch_forward(const T* start, const T* end, const T* offsets, const Shape& shape,
                           T* out, acc_t<T>* stats, cudaStream_t stream);

// grad_start, grad_end (B, Cb, T) and grad_offset (B, T, 2, K), all written (no zeroing).
template <typename T>
cudaError_t launch_backward(const T* grad_out, const T* start, const T* end, const T* offsets,
                            const acc_t<T>* stats, const Shape& shape, T* grad_start,
                            T* grad_end, T* grad_offset, cudaStream_t stream);

// out (N, 2) for the triples (batch[n], cls[n], pos[n]), indices already checked.
template <typename T>
cudaError_t launch_index(const T* start, const T* end, const T* offsets, const Shape& shape,
                         const int64_t* batch, const int64_t* cls, const int64_t* pos,
                         int64_t n, T* out, cudaStream_t stream);

}  // namespace trident_decode
}  // namespace pytal
