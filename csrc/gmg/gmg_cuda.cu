// CUDA kernels of gmg: the fused spectral filter (forward / backward) between cuFFT's R2C and
// C2R transforms, and the fused gated depthwise conv (forward / backward). The per-element
// math is gmg.h's, shared with the CPU kernel. Parameter gradients are reduced per block into
// a partial-sum buffer that the host sums (deterministic, no atomics).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "gmg/gmg_cuda.h"

namespace pytal {
namespace gmg {
namespace {

constexpr int kWarpSize = 32;
constexpr int kWarps = kBlock / kWarpSize;
constexpr int kMaxHalo = kMaxKernelSize - 1;  // 2 * (k / 2)

template <typename T, typename S>
__device__ __forceinline__ T load_as(const S* p, int64_t i) { return static_cast<T>(p[i]); }
template <>
__device__ __forceinline__ float load_as<float, __half>(const __half* p, int64_t i) {
  return __half2float(p[i]);
}
template <>
__device__ __forceinline__ float load_as<float, __nv_bfloat16>(const __nv_bfloat16* p,
                                                               int64_t i) {
  return __bfloat162float(p[i]);
}

template <typename S, typename T>
__device__ __forceinline__ S store_as(T x) { return static_cast<S>(x); }
template <>
__device__ __forceinline__ __half store_as<__half, float>(float x) { return __float2half_rn(x); }
template <>
__device__ __forceinline__ __nv_bfloat16 store_as<__nv_bfloat16, float>(float x) {
  return __float2bfloat16_rn(x);
}

template <typename T>
__device__ __forceinline__ T warp_sum(T x) {
#pragma unroll
  for (int offset = kWarpSize / 2; offset > 0; offset >>= 1)
    x += __shfl_down_sync(0xffffffffu, x, offset);
  return x;
}

// Sums acc[0..N) over the block; thread i < N writes sum i to out[i]. scratch: kWarps * N.
template <typename T, int N>
__device__ __forceinline__ void block_sums(const T* acc, T* scratch, T* out) {
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
#pragma unroll
  for (int i = 0; i < N; ++i) {
    const T s = warp_sum(acc[i]);
    if (lane == 0) scratch[warp * N + i] = s;
  }
  __syncthreads();
  if (threadIdx.x < N) {
    T s = T(0);
    for (int w = 0; w < kWarps; ++w) s += scratch[w * N + threadIdx.x];
    out[threadIdx.x] = s;
  }
}

// grid (chunks_per_row(F), rows): one thread per frequency.
template <typename T>
__global__ void __launch_bounds__(kBlock)
filter_forward_kernel(T* spec, int64_t row0, int64_t T_len, int64_t F, DeviceParams<T> p, T lambd, T in_scale,
                      T out_scale) {
  const int64_t row = row0 + blockIdx.y;
  const int64_t k = int64_t(blockIdx.x) * kBlock + threadIdx.x;
  if (k >= F) return;
  const Filter<T> f = load_filter(p.w1, p.b1, p.w2, p.b2, row % p.channels, p.channels);
  filter_forward(spec + (row * F + k) * 2, k, T_len, f, lambd, in_scale, out_scale);
}

template <typename T>
__global__ void __launch_bounds__(kBlock)
filter_backward_kernel(T* grad, const T* spec, T* partial, int64_t row0, int64_t T_len, int64_t F,
                       DeviceParams<T> p, T lambd, T in_scale, T out_scale) {
  __shared__ T scratch[kWarps * kFilterGrads];
  const int64_t row = row0 + blockIdx.y;
  const int64_t k = int64_t(blockIdx.x) * kBlock + threadIdx.x;
  T acc[kFilterGrads] = {};
  if (k < F) {
    const Filter<T> f = load_filter(p.w1, p.b1, p.w2, p.b2, row % p.channels, p.channels);
    const int64_t i = (row * F + k) * 2;
    filter_backward(grad + i, spec + i, k, T_len, f, lambd, in_scale, out_scale, acc);
  }
  block_sums<T, kFilterGrads>(acc, scratch,
                              partial + (row * gridDim.x + blockIdx.x) * kFilterGrads);
}

// Loads u[t0 - halo, t0 + kBlock + halo) of one row into xs (zeros outside [0, T)).
template <typename S, typename T>
__device__ __forceinline__ void load_tile(const S* u_row, int64_t t0, int64_t T_len, int halo,
                                          T* xs) {
  for (int j = threadIdx.x; j < kBlock + 2 * halo; j += kBlock) {
    const int64_t t = t0 - halo + j;
    xs[j] = (t >= 0 && t < T_len) ? load_as<T>(u_row, t) : T(0);
  }
}

template <typename T>
__device__ __forceinline__ void load_weights(const DeviceParams<T>& p, int64_t c, T* ws) {
  if (threadIdx.x < p.kernel_size) ws[threadIdx.x] = p.conv_weight[c * p.kernel_size + threadIdx.x];
}

// grid (chunks_per_row(T), rows): one thread per time step, the tile of u in shared memory.
template <typename S, typename T>
__global__ void __launch_bounds__(kBlock)
gated_forward_kernel(const S* u, const T* g, S* out, int64_t row0, int64_t T_len, DeviceParams<T> p,
                     Gating gating) {
  __shared__ T xs[kBlock + kMaxHalo];
  __shared__ T ws[kMaxKernelSize];
  const int64_t row = row0 + blockIdx.y, c = row % p.channels;
  const int64_t t0 = int64_t(blockIdx.x) * kBlock;
  const int k = p.kernel_size, half = k / 2;
  load_tile(u + row * T_len, t0, T_len, half, xs);
  load_weights(p, c, ws);
  __syncthreads();
  const int64_t t = t0 + threadIdx.x;
  if (t >= T_len) return;
  const T x = xs[threadIdx.x + half];
  const T l = conv_window(xs + threadIdx.x, ws, k) + p.conv_bias[c];
  const T f = p.instant_weight[c] * x + p.instant_bias[c];
  out[row * T_len + t] = store_as<S>(gated_forward(x, g[row * T_len + t], l, f, gating));
}

// Shared memory of the backward tile: u with a halo of 2 * (k/2) (dl is needed k/2 beyond the
// tile, and its l k/2 further), dl with a halo of k/2, and df.
template <typename T>
struct BackwardTile {
  T xs[kBlock + 2 * kMaxHalo];
  T dls[kBlock + kMaxHalo];
  T dfs[kBlock];
  T ws[kMaxKernelSize];
};

template <typename S, typename T>
__global__ void __launch_bounds__(kBlock)
gated_backward_kernel(const S* dout, const S* u, const T* g, T* dg, T* du, T* partial,
                      int64_t row0, int64_t T_len, DeviceParams<T> p, Gating gating) {
  __shared__ BackwardTile<T> s;
  const int64_t row = row0 + blockIdx.y, c = row % p.channels, base = row * T_len;
  const int64_t t0 = int64_t(blockIdx.x) * kBlock;
  const int k = p.kernel_size, half = k / 2;
  const T cb = p.conv_bias[c], a = p.instant_weight[c], ab = p.instant_bias[c];
  load_tile(u + base, t0, T_len, 2 * half, s.xs);
  load_weights(p, c, s.ws);
  __syncthreads();
  // dl (and, inside the tile, dg and df) at t = t0 - half + j.
  for (int j = threadIdx.x; j < kBlock + 2 * half; j += kBlock) {
    const int64_t t = t0 - half + j;
    T dlt = T(0);
    if (t >= 0 && t < T_len) {
      const T x = s.xs[j + half];
      const T l = conv_window(s.xs + j, s.ws, k) + cb;
      T dgt, dft;
      gated_backward(load_as<T>(dout, base + t), g[base + t], l, a * x + ab, gating, dgt, dlt,
                     dft);
      const bool inside = j >= half && j < half + kBlock;
      if (inside) {
        dg[base + t] = dgt;
        s.dfs[j - half] = dft;
      }
    } else if (j >= half && j < half + kBlock) {
      s.dfs[j - half] = T(0);
    }
    s.dls[j] = dlt;
  }
  __syncthreads();
  const int64_t t = t0 + threadIdx.x;
  if (t < T_len) {
    const T df = s.dfs[threadIdx.x];
    du[base + t] = load_as<T>(dout, base + t) + df * a +
                   conv_transpose_window(s.dls + threadIdx.x, s.ws, k);
  }
  // Per-block sums: warp w takes sums w, w + kWarps, ...; lanes stride over the tile.
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  T* out = partial + (row * gridDim.x + blockIdx.x) * (k + kGatedExtraGrads);
  for (int q = warp; q < k + kGatedExtraGrads; q += kWarps) {
    T acc = T(0);
    for (int i = lane; i < kBlock; i += kWarpSize) {
      const T dl = s.dls[i + half];  // zero outside [0, T)
      if (q < k) {
        acc += dl * s.xs[i + half + q];  // dl[t] * u[t + q - half]
      } else if (q == k) {
        acc += dl;
      } else if (q == k + 1) {
        acc += s.dfs[i] * s.xs[i + 2 * half];
      } else {
        acc += s.dfs[i];
      }
    }
    acc = warp_sum(acc);
    if (lane == 0) out[q] = acc;
  }
}

dim3 grid_for(int64_t n, int64_t rows) {
  return dim3(static_cast<unsigned int>(chunks_per_row(n)), static_cast<unsigned int>(rows));
}

}  // namespace

// grid.y is at most 65535: larger batches of rows go in slabs, each launch(row0, rows_in_slab).
template <typename Launch>
cudaError_t for_row_slabs(int64_t rows, Launch launch) {
  constexpr int64_t kMaxRows = 65535;
  for (int64_t r0 = 0; r0 < rows; r0 += kMaxRows) {
    launch(r0, rows - r0 < kMaxRows ? rows - r0 : kMaxRows);
    const cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) return err;
  }
  return cudaSuccess;
}

template <typename T>
cudaError_t launch_filter_forward(T* spec, int64_t rows, int64_t T_len,
                                  const DeviceParams<T>& p, T lambd, T in_scale, T out_scale,
                                  cudaStream_t stream) {
  const int64_t F = T_len / 2 + 1;
  return for_row_slabs(rows, [&](int64_t r0, int64_t n) {
    filter_forward_kernel<T><<<grid_for(F, n), kBlock, 0, stream>>>(spec, r0, T_len, F, p, lambd,
                                                                     in_scale, out_scale);
  });
}

template <typename T>
cudaError_t launch_filter_backward(T* grad, const T* spec, T* partial, int64_t rows,
                                   int64_t T_len, const DeviceParams<T>& p, T lambd, T in_scale,
                                   T out_scale, cudaStream_t stream) {
  const int64_t F = T_len / 2 + 1;
  return for_row_slabs(rows, [&](int64_t r0, int64_t n) {
    filter_backward_kernel<T><<<grid_for(F, n), kBlock, 0, stream>>>(
        grad, spec, partial, r0, T_len, F, p, lambd, in_scale, out_scale);
  });
}

template <typename S, typename T>
cudaError_t launch_gated_forward(const S* u, const T* g, S* out, int64_t rows, int64_t T_len,
                                 const DeviceParams<T>& p, Gating gating, cudaStream_t stream) {
  return for_row_slabs(rows, [&](int64_t r0, int64_t n) {
    gated_forward_kernel<S, T><<<grid_for(T_len, n), kBlock, 0, stream>>>(u, g, out, r0, T_len,
                                                                          p, gating);
  });
}

template <typename S, typename T>
cudaError_t launch_gated_backward(const S* dout, const S* u, const T* g, T* dg, T* du,
                                  T* partial, int64_t rows, int64_t T_len,
                                  const DeviceParams<T>& p, Gating gating, cudaStream_t stream) {
  return for_row_slabs(rows, [&](int64_t r0, int64_t n) {
    gated_backward_kernel<S, T><<<grid_for(T_len, n), kBlock, 0, stream>>>(
        dout, u, g, dg, du, partial, r0, T_len, p, gating);
  });
}

#define PYTAL_INSTANTIATE_FILTER(T)                                                           \
  template cudaError_t launch_filter_forward<T>(T*, int64_t, int64_t, const DeviceParams<T>&, \
                                                T, T, T, cudaStream_t);                       \
  template cudaError_t launch_filter_backward<T>(T*, const T*, T*, int64_t, int64_t,          \
                                                 const DeviceParams<T>&, T, T, T, cudaStream_t);
#define PYTAL_INSTANTIATE_GATED(S, T)                                                          \
  template cudaError_t launch_gated_forward<S, T>(const S*, const T*, S*, int64_t, int64_t,    \
                                                  const DeviceParams<T>&, Gating, cudaStream_t); \
  template cudaError_t launch_gated_backward<S, T>(const S*, const S*, const T*, T*, T*, T*,   \
                                                   int64_t, int64_t, const DeviceParams<T>&,   \
                                                   Gating, cudaStream_t);
PYTAL_INSTANTIATE_FILTER(float)
PYTAL_INSTANTIATE_FILTER(double)
PYTAL_INSTANTIATE_GATED(float, float)
PYTAL_INSTANTIATE_GATED(double, double)
PYTAL_INSTANTIATE_GATED(__half, float)
PYTAL_INSTANTIATE_GATED(__nv_bfloat16, float)
#undef PYTAL_INSTANTIATE_FILTER
#undef PYTAL_INSTANTIATE_GATED

}  // namespace gmg
}  // namespace pytal
