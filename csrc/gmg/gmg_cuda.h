// Launch functions of the gmg CUDA kernels: raw device pointers and sizes only, so that the
// .cu file needs no torch headers. S = the storage type of u / out (float, double, __half,
// __nv_bfloat16), T = the compute type (float, or double with double storage).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "gmg/gmg.h"

namespace pytal {
namespace gmg {

// The parameters (device memory, compute type T), laid out as in gmg_host.h's Params.
template <typename T>
struct DeviceParams {
  const T *w1, *b1, *w2, *b2;  // (2, C)
  const T* conv_weight;        // (C, k)
  const T *conv_bias, *instant_weight, *instant_bias;  // (C,)
  int64_t channels;
  int kernel_size;
};

// Threads per block of every gmg kernel; also the frequencies / time steps one block covers
// within a row, so that row r's partial sums are chunks_per_row(n) consecutive entries.
constexpr int kBlock = 256;
inline int64_t chunks_per_row(int64_t n) { return (n + kBlock - 1) / kBlock; }

// spec (rows, F, 2) in place: U * in_scale -> U * W(U) * out_scale (gmg.h filter_forward).
template <typename T>
cudaError_t launch_filter_forward(T* spec, int64_t rows, int64_t T_len,
                                  const DeviceParams<T>& p, T lambd, T in_scale, T out_scale,
                                  cudaStream_t stream);

// grad (rows, F, 2) in place (gmg.h filter_backward); partial (rows, chunks_per_row(F),
// kFilterGrads) receives each block's sums of the filter gradients.
template <typename T>
cudaError_t launch_filter_backward(T* grad, const T* spec, T* partial, int64_t rows,
                                   int64_t T_len, const DeviceParams<T>& p, T lambd, T in_scale,
                                   T out_scale, cudaStream_t stream);

// out (rows, T) = the gated mix of u (rows, T) and the global branch g (rows, T).
template <typename S, typename T>
cudaError_t launch_gated_forward(const S* u, const T* g, S* out, int64_t rows, int64_t T_len,
                                 const DeviceParams<T>& p, Gating gating, cudaStream_t stream);

// From dL/dout: dg = dL/dg, du = the non-spectral part of dL/du (both (rows, T)), and
// partial (rows, chunks_per_row(T), k + kGatedExtraGrads) each block's sums of the conv and
// instant parameters' gradients.
template <typename S, typename T>
cudaError_t launch_gated_backward(const S* dout, const S* u, const T* g, T* dg, T* du,
                                  T* partial, int64_t rows, int64_t T_len,
                                  const DeviceParams<T>& p, Gating gating, cudaStream_t stream);

}  // namespace gmg
}  // namespace pytal
