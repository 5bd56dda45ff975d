// CUDA kernels of trident_decode: one thread per output element (or, in the index form's
// backward, per group of triples that only it writes), each running the function of
// trident_decode.h that the CPU kernel runs. Forward and boundary gradients index
// (b, c, t) with t fastest, so neighbouring threads read neighbouring logits; the offset
// gradient is one thread per (b, t, side, bin) reducing over classes. Gathers only: no
// atomics, deterministic.
#include "trident_decode/trident_decode_cuda.h"

namespace pytal {
namespace trident_decode {
namespace {

constexpr int kThreads = 256;

unsigned int blocks_for(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned int>(blocks < 65535 * 16 ? blocks : 65535 * 16);
}

__device__ __forceinline__ int64_t global_thread() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t thread_stride() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    forward_kernel(const T* __restrict__ start, const T* __restrict__ end,
                   const T* __restrict__ offsets, const Shape s, T* __restrict__ out,
                   acc_t<T>* __restrict__ stats) {
  const int64_t total = s.batch * s.classes * s.length;
  for (int64_t n = global_thread(); n < total; n += thread_stride()) {
    const int64_t t = n % s.length;
    const int64_t bc = n / s.length;
    forward_at<acc_t<T>>(start, end, offsets, s, bc / s.classes, t, bc % s.classes, out, stats);
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    boundary_grad_kernel(const T* __restrict__ grad_out, const T* __restrict__ start,
                         const T* __restrict__ end, const T* __restrict__ offsets,
                         const acc_t<T>* __restrict__ stats, const Shape s,
                         T* __restrict__ grad_start, T* __restrict__ grad_end) {
  using Acc = acc_t<T>;
  const int64_t total = s.batch * s.classes * s.length;
  for (int64_t n = global_thread(); n < total; n += thread_stride()) {
    const int64_t p = n % s.length;
    const int64_t bc = n / s.length;
    const int64_t b = bc / s.classes, c = bc % s.classes;
    grad_start[n] = from_acc<T>(boundary_grad_at<Acc>(grad_out, start, offsets, stats, s, 0, b, c, p));
    grad_end[n] = from_acc<T>(boundary_grad_at<Acc>(grad_out, end, offsets, stats, s, 1, b, c, p));
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    offset_grad_kernel(const T* __restrict__ grad_out, const T* __restrict__ start,
                       const T* __restrict__ end, const T* __restrict__ offsets,
                       const acc_t<T>* __restrict__ stats, const Shape s,
                       T* __restrict__ grad_offset) {
  using Acc = acc_t<T>;
  const int64_t total = s.batch * s.length * 2 * s.bins;
  for (int64_t n = global_thread(); n < total; n += thread_stride()) {
    const int64_t i = n % s.bins;
    const int side = static_cast<int>((n / s.bins) % 2);
    const int64_t bt = n / (2 * s.bins);
    grad_offset[n] = from_acc<T>(offset_grad_at<Acc>(grad_out, start, end, offsets, stats, s,
                                                     side, bt / s.length, bt % s.length, i));
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    index_kernel(const T* __restrict__ start, const T* __restrict__ end,
                 const T* __restrict__ offsets, const Shape s, const int64_t* __restrict__ batch,
                 const int64_t* __restrict__ cls, const int64_t* __restrict__ pos, int64_t count,
                 T* __restrict__ out, acc_t<T>* __restrict__ stats) {
  for (int64_t n = global_thread(); n < count; n += thread_stride()) {
    index_at<acc_t<T>>(start, end, offsets, s, batch[n], cls[n], pos[n], n, out, stats);
  }
}

// One thread per (triple, side).
template <typename T>
__global__ void __launch_bounds__(kThreads)
    index_logit_grads_kernel(const T* __restrict__ grad_out, const T* __restrict__ start,
                             const T* __restrict__ end, const T* __restrict__ offsets,
                             const acc_t<T>* __restrict__ stats, const Shape s,
                             IndexTriples triples, acc_t<T>* __restrict__ logit_grads) {
  for (int64_t ns = global_thread(); ns < triples.count * 2; ns += thread_stride()) {
    const int64_t n = ns / 2;
    const int side = static_cast<int>(ns % 2);
    index_logit_grads_at<acc_t<T>>(grad_out, side == 0 ? start : end, offsets, stats, s,
                                   triples.batch[n], triples.cls[n], triples.pos[n], n, side,
                                   logit_grads);
  }
}

// One thread per (boundary row group, side): the row's only writer.
template <typename Acc>
__global__ void __launch_bounds__(kThreads)
    index_boundary_grad_kernel(const Acc* __restrict__ logit_grads, const Shape s,
                               IndexTriples triples, IndexGroupsView rows,
                               Acc* __restrict__ grad_start, Acc* __restrict__ grad_end) {
  for (int64_t gs = global_thread(); gs < rows.count * 2; gs += thread_stride()) {
    const int64_t g = gs / 2;
    const int side = static_cast<int>(gs % 2);
    if (rows.starts[g] == rows.starts[g + 1]) continue;  // an unused trailing group
    const int64_t first = rows.order[rows.starts[g]];
    Acc* grad_row = (side == 0 ? grad_start : grad_end) +
                    (triples.batch[first] * s.classes + triples.cls[first]) * s.length;
    index_boundary_grad_group<Acc>(logit_grads, rows.order, triples.pos, rows.starts[g],
                                   rows.starts[g + 1], side, s, grad_row);
  }
}

// One thread per (offset row group, side, bin).
template <typename T>
__global__ void __launch_bounds__(kThreads)
    index_offset_grad_kernel(const acc_t<T>* __restrict__ logit_grads, const Shape s,
                             IndexTriples triples, IndexGroupsView positions,
                             T* __restrict__ grad_offset) {
  const int64_t per_group = 2 * s.bins;
  for (int64_t e = global_thread(); e < positions.count * per_group; e += thread_stride()) {
    const int64_t g = e / per_group, i = e % s.bins;
    const int side = static_cast<int>((e / s.bins) % 2);
    if (positions.starts[g] == positions.starts[g + 1]) continue;  // an unused trailing group
    const int64_t first = positions.order[positions.starts[g]];
    const int64_t bt = triples.batch[first] * s.length + triples.pos[first];
    grad_offset[(bt * 2 + side) * s.bins + i] = from_acc<T>(index_offset_grad_group<acc_t<T>>(
        logit_grads, positions.order, positions.starts[g], positions.starts[g + 1], side, i,
        s.bins));
  }
}

}  // namespace

template <typename T>
cudaError_t launch_forward(const T* start, const T* end, const T* offsets, const Shape& shape,
                           T* out, acc_t<T>* stats, cudaStream_t stream) {
  const int64_t total = shape.batch * shape.classes * shape.length;
  if (total == 0) return cudaSuccess;
  forward_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(start, end, offsets, shape, out,
                                                                stats);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_backward(const T* grad_out, const T* start, const T* end, const T* offsets,
                            const acc_t<T>* stats, const Shape& shape, T* grad_start,
                            T* grad_end, T* grad_offset, cudaStream_t stream) {
  const int64_t rows = shape.batch * shape.classes * shape.length;
  if (rows > 0) {
    boundary_grad_kernel<T><<<blocks_for(rows), kThreads, 0, stream>>>(
        grad_out, start, end, offsets, stats, shape, grad_start, grad_end);
    const cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) return err;
  }
  const int64_t bins = shape.batch * shape.length * 2 * shape.bins;
  if (bins > 0) {
    offset_grad_kernel<T><<<blocks_for(bins), kThreads, 0, stream>>>(
        grad_out, start, end, offsets, stats, shape, grad_offset);
  }
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_index(const T* start, const T* end, const T* offsets, const Shape& shape,
                         const int64_t* batch, const int64_t* cls, const int64_t* pos,
                         int64_t n, T* out, acc_t<T>* stats, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  index_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(start, end, offsets, shape, batch, cls,
                                                          pos, n, out, stats);
  return cudaGetLastError();
}

template <typename T>
cudaError_t launch_index_backward(const T* grad_out, const T* start, const T* end,
                                  const T* offsets, const acc_t<T>* stats, const Shape& shape,
                                  const IndexTriples& triples, const IndexGroupsView& rows,
                                  const IndexGroupsView& positions, acc_t<T>* logit_grads,
                                  acc_t<T>* grad_start, acc_t<T>* grad_end, T* grad_offset,
                                  cudaStream_t stream) {
  if (triples.count == 0) return cudaSuccess;
  index_logit_grads_kernel<T><<<blocks_for(triples.count * 2), kThreads, 0, stream>>>(
      grad_out, start, end, offsets, stats, shape, triples, logit_grads);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  index_boundary_grad_kernel<acc_t<T>><<<blocks_for(rows.count * 2), kThreads, 0, stream>>>(
      logit_grads, shape, triples, rows, grad_start, grad_end);
  err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  index_offset_grad_kernel<T>
      <<<blocks_for(positions.count * 2 * shape.bins), kThreads, 0, stream>>>(
          logit_grads, shape, triples, positions, grad_offset);
  return cudaGetLastError();
}

#define PYTAL_INSTANTIATE(T)                                                                   \
  template cudaError_t launch_forward<T>(const T*, const T*, const T*, const Shape&, T*,       \
                                         acc_t<T>*, cudaStream_t);                             \
  template cudaError_t launch_backward<T>(const T*, const T*, const T*, const T*,              \
                                          const acc_t<T>*, const Shape&, T*, T*, T*,           \
                                          cudaStream_t);                                       \
  template cudaError_t launch_index<T>(const T*, const T*, const T*, const Shape&,             \
                                       const int64_t*, const int64_t*, const int64_t*,         \
                                       int64_t, T*, acc_t<T>*, cudaStream_t);                  \
  template cudaError_t launch_index_backward<T>(                                               \
      const T*, const T*, const T*, const T*, const acc_t<T>*, const Shape&,                   \
      const IndexTriples&, const IndexGroupsView&, const IndexGroupsView&, acc_t<T>*,          \
      acc_t<T>*, acc_t<T>*, T*, cudaStream_t);
PYTAL_INSTANTIATE(float)
PYTAL_INSTANTIATE(double)
PYTAL_INSTANTIATE(__half)
PYTAL_INSTANTIATE(__nv_bfloat16)
#undef PYTAL_INSTANTIATE

}  // namespace trident_decode
}  // namespace pytal
