// CUDA kernels of boundary_pool / segment_pool.
//
// Shared-memory path (rows up to 32767 positions whose working set fits): a block per feature
// row. The row is loaded once into shared memory; max mode builds the row's sparse table there
// (when the row's intervals are long enough to pay for it, else each thread scans its
// intervals in shared memory) and answers every interval with two lookups; mean mode builds
// float64 prefix sums with a block scan. Backward recomputes the argmaxes (max) or fills a
// float64 difference array (mean); each position is accumulated by the one thread that owns
// it, in ascending k (no atomics: deterministic).
// Long rows: a warp per output reduces its interval cooperatively; the backward sorts the
// gradient's contributions by position (host side) and sums each position's run in the sorted
// order, O(T + K log K) per row.
#include "boundary_pool/boundary_pool_cuda.h"

#include "common/cuda_launch.cuh"

namespace pytal {
namespace boundary_pool {

template <>
struct Compute<__half> {
  using type = float;
  __host__ __device__ static float load(__half x) { return __half2float(x); }
  __host__ __device__ static __half store(float x) { return __float2half_rn(x); }
};
template <>
struct Compute<__nv_bfloat16> {
  using type = float;
  __host__ __device__ static float load(__nv_bfloat16 x) { return __bfloat162float(x); }
  __host__ __device__ static __nv_bfloat16 store(float x) { return __float2bfloat16_rn(x); }
};

namespace {

constexpr int kThreads = 256;
constexpr int kWarpSize = 32;
constexpr int kWarps = kThreads / kWarpSize;
constexpr unsigned kFullMask = 0xffffffffu;
// Positions in the shared-memory path are int16.
using Index = int16_t;
constexpr int64_t kMaxSharedLength = 32767;

template <typename T>
using ComputeT = typename Compute<T>::type;

template <typename T>
__device__ __forceinline__ double as_double(T x) {
  return static_cast<double>(Compute<T>::load(x));
}

__host__ __device__ inline size_t align16(size_t bytes) { return (bytes + 15) / 16 * 16; }

// Byte offsets of the arrays of one block's dynamic shared memory.
struct Layout {
  size_t table = 0;   // Index [levels * n]          max
  size_t row = 0;     // T [n]                        max, forward mean
  size_t prefix = 0;  // double [n + 1]               mean
  size_t argmax = 0;  // Index [K]                    backward max
  size_t grads = 0;   // ComputeT [K]                 backward max
  size_t sums = 0;    // ComputeT [n]                 backward max
  size_t bounds = 0;  // Index [2K] (lo, hi)          backward mean
  size_t shares = 0;  // double [K]                   backward mean
  size_t diff = 0;    // double [n + 1]               backward mean
  size_t bytes = 0;
};

template <typename T>
__host__ __device__ Layout shared_layout(int n, int64_t k, Mode mode, bool backward) {
  Layout l;
  size_t at = 0;
  if (mode == Mode::kMax) {
    l.table = at;
    at = align16(at + sizeof(Index) * size_t(table_levels(n)) * n);
    l.row = at;
    at = align16(at + sizeof(T) * n);
    if (backward) {
      l.argmax = at;
      at = align16(at + sizeof(Index) * k);
      l.grads = at;
      at = align16(at + sizeof(ComputeT<T>) * k);
      l.sums = at;
      at = align16(at + sizeof(ComputeT<T>) * n);
    }
  } else if (!backward) {
    l.prefix = at;
    at = align16(at + sizeof(double) * (n + 1));
    l.row = at;
    at = align16(at + sizeof(T) * n);
  } else {
    l.bounds = at;
    at = align16(at + sizeof(Index) * 2 * k);
    l.shares = at;
    at = align16(at + sizeof(double) * k);
    l.diff = at;
    at = align16(at + sizeof(double) * (n + 1));
    l.prefix = at;
    at = align16(at + sizeof(double) * (n + 1));
  }
  l.bytes = at;
  return l;
}

template <typename P>
__device__ __forceinline__ P* shared_at(unsigned char* base, size_t offset) {
  return reinterpret_cast<P*>(base + offset);
}

// Sum of every thread's value, returned to all threads.
__device__ int64_t block_sum(int64_t v, int64_t* warp_sums) {
  for (int offset = kWarpSize / 2; offset > 0; offset >>= 1) {
    v += __shfl_down_sync(kFullMask, v, offset);
  }
  if (threadIdx.x % kWarpSize == 0) warp_sums[threadIdx.x / kWarpSize] = v;
  __syncthreads();
  int64_t total = 0;
  for (int w = 0; w < kWarps; ++w) total += warp_sums[w];
  return total;
}

template <typename T>
__device__ void load_row(const T* __restrict__ src, int n, T* row) {
  for (int i = threadIdx.x; i < n; i += blockDim.x) row[i] = src[i];
  __syncthreads();
}

// prefix[i] = sum of row[0, i) in float64: each thread scans a contiguous chunk, chunk totals
// are scanned across the block. Fixed order, so deterministic.
template <typename T>
__device__ void block_prefix_sums(const T* row, int n, double* prefix, double* warp_totals) {
  const int lane = threadIdx.x % kWarpSize;
  const int warp = threadIdx.x / kWarpSize;
  const int chunk = (n + kThreads - 1) / kThreads;
  const int begin = min(n, int(threadIdx.x) * chunk);
  const int end = min(n, begin + chunk);
  double local = 0.0;
  for (int i = begin; i < end; ++i) local += as_double(row[i]);
  double inclusive = local;
  for (int offset = 1; offset < kWarpSize; offset <<= 1) {
    const double up = __shfl_up_sync(kFullMask, inclusive, offset);
    if (lane >= offset) inclusive += up;
  }
  if (lane == kWarpSize - 1) warp_totals[warp] = inclusive;
  __syncthreads();
  if (warp == 0) {
    const double total = lane < kWarps ? warp_totals[lane] : 0.0;
    double scanned = total;
    for (int offset = 1; offset < kWarpSize; offset <<= 1) {
      const double up = __shfl_up_sync(kFullMask, scanned, offset);
      if (lane >= offset) scanned += up;
    }
    if (lane < kWarps) warp_totals[lane] = scanned - total;  // exclusive
  }
  __syncthreads();
  double running = warp_totals[warp] + (inclusive - local);
  if (threadIdx.x == 0) prefix[0] = 0.0;
  for (int i = begin; i < end; ++i) {
    running += as_double(row[i]);
    prefix[i + 1] = running;
  }
  __syncthreads();
}

// Builds the row's sparse table in shared memory when prefer_table says it pays; returns
// whether it did (the same answer in every thread).
template <typename T>
__device__ bool build_table_if_worth(const T* row, int n, const RowIntervals& iv, Index* table,
                                     int64_t* warp_sums) {
  int64_t length = 0;
  for (int64_t k = threadIdx.x; k < iv.count; k += blockDim.x) length += iv.length(k);
  if (!prefer_table(n, block_sum(length, warp_sums), iv.count)) return false;
  const int levels = table_levels(n);
  for (int level = 1; level <= levels; ++level) {
    Index* out = table + (level - 1) * n;
    const int last = n - (1 << level);
    for (int i = threadIdx.x; i <= last; i += blockDim.x) {
      out[i] = table_entry(row, table, n, level, i);
    }
    __syncthreads();
  }
  return true;
}

template <typename T>
__device__ __forceinline__ int interval_argmax(const T* row, const Index* table, int n,
                                               const RowIntervals& iv, int64_t k,
                                               bool use_table) {
  return use_table ? table_argmax(row, table, n, iv.lo(k), iv.hi(k))
                   : scan_argmax(row, iv.lo(k), iv.hi(k));
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    forward_rows_kernel(const T* __restrict__ features, const int32_t* __restrict__ bounds,
                        const Problem p, const Mode mode, T* __restrict__ out) {
  extern __shared__ __align__(16) unsigned char shared[];
  __shared__ int64_t warp_sums[kWarps];
  __shared__ double warp_totals[kWarps];
  const int64_t r = blockIdx.x;
  const int n = static_cast<int>(p.length);
  const Layout lay = shared_layout<T>(n, p.intervals, mode, /*backward=*/false);
  T* row = shared_at<T>(shared, lay.row);
  load_row(features + r * n, n, row);
  const RowIntervals iv = intervals_of(bounds, p, r);
  T* y = out + r * p.intervals;
  if (mode == Mode::kMean) {
    double* prefix = shared_at<double>(shared, lay.prefix);
    block_prefix_sums(row, n, prefix, warp_totals);
    for (int64_t k = threadIdx.x; k < iv.count; k += blockDim.x) {
      y[k] = store_double<T>(interval_mean(prefix, iv.lo(k), iv.hi(k)));
    }
    return;
  }
  Index* table = shared_at<Index>(shared, lay.table);
  const bool use_table = build_table_if_worth(row, n, iv, table, warp_sums);
  for (int64_t k = threadIdx.x; k < iv.count; k += blockDim.x) {
    y[k] = row[interval_argmax(row, table, n, iv, k, use_table)];
  }
}

// Position t of a row belongs to thread t % kThreads (the launch uses kThreads threads). In
// the backward pass the owner alone accumulates into t, visiting k in ascending order, so
// the sums need no atomics and are deterministic.
__device__ __forceinline__ bool owns(int t) { return t % kThreads == int(threadIdx.x); }

template <typename T>
__global__ void __launch_bounds__(kThreads)
    backward_rows_kernel(const T* __restrict__ features, const T* __restrict__ grad_out,
                         const int32_t* __restrict__ bounds, const Problem p, const Mode mode,
                         T* __restrict__ grad_in) {
  extern __shared__ __align__(16) unsigned char shared[];
  __shared__ int64_t warp_sums[kWarps];
  __shared__ double warp_totals[kWarps];
  const int64_t r = blockIdx.x;
  const int n = static_cast<int>(p.length);
  const Layout lay = shared_layout<T>(n, p.intervals, mode, /*backward=*/true);
  const RowIntervals iv = intervals_of(bounds, p, r);
  const T* g = grad_out + r * p.intervals;
  T* gx = grad_in + r * n;
  if (mode == Mode::kMean) {
    // grad[k] / length added at lo and subtracted at hi + 1 of a difference array (by the
    // owners of those positions), whose prefix sums are the gradient: O(K + n) per row.
    Index* lohi = shared_at<Index>(shared, lay.bounds);
    double* shares = shared_at<double>(shared, lay.shares);
    double* diff = shared_at<double>(shared, lay.diff);
    double* prefix = shared_at<double>(shared, lay.prefix);
    for (int64_t k = threadIdx.x; k < iv.count; k += blockDim.x) {
      lohi[2 * k] = static_cast<Index>(iv.lo(k));
      lohi[2 * k + 1] = static_cast<Index>(iv.hi(k));
      shares[k] = as_double(g[k]) / double(iv.length(k));
    }
    for (int t = threadIdx.x; t <= n; t += blockDim.x) diff[t] = 0.0;
    __syncthreads();
    for (int64_t k = 0; k < iv.count; ++k) {
      const int lo = lohi[2 * k];
      const int end = lohi[2 * k + 1] + 1;
      if (owns(lo)) diff[lo] += shares[k];
      if (owns(end)) diff[end] -= shares[k];
    }
    __syncthreads();
    block_prefix_sums(diff, n, prefix, warp_totals);
    for (int t = threadIdx.x; t < n; t += blockDim.x) gx[t] = store_double<T>(prefix[t + 1]);
    return;
  }
  T* row = shared_at<T>(shared, lay.row);
  Index* table = shared_at<Index>(shared, lay.table);
  Index* argmax = shared_at<Index>(shared, lay.argmax);
  ComputeT<T>* grads = shared_at<ComputeT<T>>(shared, lay.grads);
  ComputeT<T>* sums = shared_at<ComputeT<T>>(shared, lay.sums);
  load_row(features + r * n, n, row);
  const bool use_table = build_table_if_worth(row, n, iv, table, warp_sums);
  for (int64_t k = threadIdx.x; k < iv.count; k += blockDim.x) {
    argmax[k] = static_cast<Index>(interval_argmax(row, table, n, iv, k, use_table));
    grads[k] = Compute<T>::load(g[k]);
  }
  for (int t = threadIdx.x; t < n; t += blockDim.x) sums[t] = 0;
  __syncthreads();
  // Ascending k, starting from 0, in the compute type: the CPU kernel's order exactly.
  for (int64_t k = 0; k < iv.count; ++k) {
    const int t = argmax[k];
    if (owns(t)) sums[t] += grads[k];
  }
  for (int t = threadIdx.x; t < n; t += blockDim.x) gx[t] = Compute<T>::store(sums[t]);
}

// ---- long rows: a warp per output ----------------------------------------------------------

// Keeps the first maximum of two (value, position) candidates; position < 0 is none.
template <typename V>
__device__ __forceinline__ void keep_first_max(V& v, int& i, V other_v, int other_i) {
  if (other_i < 0) return;
  if (i < 0 || beats(other_v, v) || (!beats(v, other_v) && other_i < i)) {
    v = other_v;
    i = other_i;
  }
}

template <typename T>
__device__ int warp_argmax(const T* row, int lo, int hi) {
  ComputeT<T> v = 0;
  int i = -1;
  for (int t = lo + threadIdx.x % kWarpSize; t <= hi; t += kWarpSize) {
    keep_first_max(v, i, value_at(row, t), t);
  }
  for (int offset = kWarpSize / 2; offset > 0; offset >>= 1) {
    const ComputeT<T> other_v = __shfl_down_sync(kFullMask, v, offset);
    const int other_i = __shfl_down_sync(kFullMask, i, offset);
    keep_first_max(v, i, other_v, other_i);
  }
  return __shfl_sync(kFullMask, i, 0);
}

template <typename T>
__device__ double warp_sum(const T* row, int lo, int hi) {
  double s = 0.0;
  for (int t = lo + threadIdx.x % kWarpSize; t <= hi; t += kWarpSize) {
    s += as_double(row[t]);
  }
  for (int offset = kWarpSize / 2; offset > 0; offset >>= 1) {
    s += __shfl_down_sync(kFullMask, s, offset);
  }
  return __shfl_sync(kFullMask, s, 0);
}

// Output o = row * K + k handled by warp o; writes the pooled value (out) and, when argmax_out
// is not null, the argmax (max mode).
template <typename T>
__global__ void __launch_bounds__(kThreads)
    forward_warps_kernel(const T* __restrict__ features, const int32_t* __restrict__ bounds,
                         const Problem p, const Mode mode, T* __restrict__ out,
                         int32_t* __restrict__ argmax_out) {
  const int64_t o = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / kWarpSize;
  if (o >= p.rows() * p.intervals) return;  // whole warps exit together
  const int64_t r = o / p.intervals;
  const int64_t k = o % p.intervals;
  const RowIntervals iv = intervals_of(bounds, p, r);
  const T* row = features + r * p.length;
  const bool lane0 = threadIdx.x % kWarpSize == 0;
  if (mode == Mode::kMean) {
    const double s = warp_sum(row, iv.lo(k), iv.hi(k));
    if (lane0) out[o] = store_double<T>(s / double(iv.length(k)));
    return;
  }
  const int best = warp_argmax(row, iv.lo(k), iv.hi(k));
  if (lane0) {
    if (out != nullptr) out[o] = row[best];
    if (argmax_out != nullptr) argmax_out[o] = best;
  }
}

// Thread per output position i: the sum of values[order[j]] over the run of sorted keys equal
// to i, found by binary search, in the order of `order` (a stable sort keeps the original
// order within a run, so sums are deterministic and follow the CPU kernel's order).
template <typename T>
__global__ void __launch_bounds__(kThreads)
    sum_sorted_kernel(const T* __restrict__ values, const int64_t* __restrict__ sorted_keys,
                      const int64_t* __restrict__ order, const int64_t count,
                      const int64_t total, T* __restrict__ out) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= total) return;
  int64_t lo = 0, hi = count;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (sorted_keys[mid] < i) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  ComputeT<T> acc = 0;
  for (int64_t j = lo; j < count && sorted_keys[j] == i; ++j) {
    acc += Compute<T>::load(values[order[j]]);
  }
  out[i] = Compute<T>::store(acc);
}

// ---- launch helpers ------------------------------------------------------------------------

// Dynamic shared memory of the row kernel (forward or backward) for this problem in *bytes,
// or 0 when the row does not fit and the long-row kernels run instead.
template <typename T>
cudaError_t row_kernel_bytes(const Problem& p, Mode mode, bool backward, int device,
                             size_t* bytes) {
  *bytes = 0;
  if (p.length > kMaxSharedLength) return cudaSuccess;
  const void* kernel = backward ? reinterpret_cast<const void*>(&backward_rows_kernel<T>)
                                : reinterpret_cast<const void*>(&forward_rows_kernel<T>);
  int limit = 0;
  const cudaError_t err = dynamic_shared_limit(kernel, device, &limit);
  if (err != cudaSuccess) return err;
  const size_t need = shared_layout<T>(int(p.length), p.intervals, mode, backward).bytes;
  if (need <= size_t(limit)) *bytes = need;
  return cudaSuccess;
}

unsigned blocks_for(int64_t threads) {
  return static_cast<unsigned>((threads + kThreads - 1) / kThreads);
}

}  // namespace

template <typename T>
cudaError_t launch_pool_forward(const T* features, const int32_t* bounds, const Problem& p,
                                Mode mode, T* out, int device, cudaStream_t stream) {
  if (p.empty()) return cudaSuccess;
  size_t bytes = 0;
  const cudaError_t err = row_kernel_bytes<T>(p, mode, /*backward=*/false, device, &bytes);
  if (err != cudaSuccess) return err;
  if (bytes > 0) {
    forward_rows_kernel<T><<<static_cast<unsigned>(p.rows()), kThreads, bytes, stream>>>(
        features, bounds, p, mode, out);
  } else {
    forward_warps_kernel<T><<<blocks_for(p.rows() * p.intervals * kWarpSize), kThreads, 0,
                              stream>>>(features, bounds, p, mode, out, nullptr);
  }
  return cudaGetLastError();
}

template <typename T>
cudaError_t backward_uses_rows(const Problem& p, Mode mode, int device, bool* rows) {
  size_t bytes = 0;
  const cudaError_t err = row_kernel_bytes<T>(p, mode, /*backward=*/true, device, &bytes);
  *rows = bytes > 0;
  return err;
}

template <typename T>
cudaError_t launch_pool_backward_rows(const T* features, const T* grad_out,
                                      const int32_t* bounds, const Problem& p, Mode mode,
                                      T* grad_in, int device, cudaStream_t stream) {
  if (p.empty()) return cudaSuccess;
  size_t bytes = 0;
  const cudaError_t err = row_kernel_bytes<T>(p, mode, /*backward=*/true, device, &bytes);
  if (err != cudaSuccess) return err;
  if (bytes == 0) return cudaErrorInvalidValue;  // the caller checks backward_uses_rows first
  backward_rows_kernel<T><<<static_cast<unsigned>(p.rows()), kThreads, bytes, stream>>>(
      features, grad_out, bounds, p, mode, grad_in);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_pool_argmax(const T* features, const int32_t* bounds, const Problem& p,
                               int32_t* argmax, cudaStream_t stream) {
  if (p.empty()) return cudaSuccess;
  forward_warps_kernel<T><<<blocks_for(p.rows() * p.intervals * kWarpSize), kThreads, 0,
                            stream>>>(features, bounds, p, Mode::kMax, nullptr, argmax);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_sum_sorted(const T* values, const int64_t* sorted_keys, const int64_t* order,
                              int64_t count, int64_t total, T* out, cudaStream_t stream) {
  if (total == 0) return cudaSuccess;
  sum_sorted_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(values, sorted_keys, order,
                                                                    count, total, out);
  return cudaGetLastError();
}

#define PYTAL_INSTANTIATE(T)                                                                   \
  template cudaError_t launch_pool_forward<T>(const T*, const int32_t*, const Problem&, Mode, \
                                              T*, int, cudaStream_t);                          \
  template cudaError_t backward_uses_rows<T>(const Problem&, Mode, int, bool*);               \
  template cudaError_t launch_pool_backward_rows<T>(const T*, const T*, const int32_t*,        \
                                                    const Problem&, Mode, T*, int,             \
                                                    cudaStream_t);                             \
  template cudaError_t launch_pool_argmax<T>(const T*, const int32_t*, const Problem&,         \
                                             int32_t*, cudaStream_t);                          \
  template cudaError_t launch_sum_sorted<T>(const T*, const int64_t*, const int64_t*, int64_t, \
                                            int64_t, T*, cudaStream_t);
PYTAL_INSTANTIATE(float)
PYTAL_INSTANTIATE(double)
PYTAL_INSTANTIATE(__half)
PYTAL_INSTANTIATE(__nv_bfloat16)
#undef PYTAL_INSTANTIATE

}  // namespace boundary_pool
}  // namespace pytal
