// CUDA kernel of soft_nms: every group in one launch, a block per group. A group's
// candidates live in shared memory when they fit, else in a global workspace. Each selection
// is one block-wide argmax; decaying, dropping and the next argmax are fused in one pass.
#include "soft_nms/soft_nms_cuda.h"

#include "common/cuda_launch.cuh"

namespace pytal {
namespace soft_nms {
namespace {

constexpr int kWarpSize = 32;
constexpr int kMaxThreads = 256;

template <typename T>
constexpr int bytes_per_candidate() {
  return 3 * static_cast<int>(sizeof(T));  // start, end, score
}

// (score, pos) candidate for the argmax; pos < 0 means none.
template <typename T>
__device__ __forceinline__ void keep_better(T& score, int& pos, T other_score, int other_pos) {
  if (other_pos >= 0 &&
      (pos < 0 || ranks_before(other_score, int64_t(other_pos), score, int64_t(pos)))) {
    score = other_score;
    pos = other_pos;
  }
}

template <typename T>
__device__ __forceinline__ void warp_best(T& score, int& pos) {
#pragma unroll
  for (int offset = kWarpSize / 2; offset > 0; offset >>= 1) {
    const T other_score = __shfl_down_sync(0xffffffffu, score, offset);
    const int other_pos = __shfl_down_sync(0xffffffffu, pos, offset);
    keep_better(score, pos, other_score, other_pos);
  }
}

// Block-wide argmax of each thread's (score, pos); the result lands in *best_score /
// *best_pos for every thread to read after the call.
template <typename T>
__device__ __forceinline__ void block_best(T score, int pos, T* warp_score, int* warp_pos,
                                           T* best_score, int* best_pos) {
  const int lane = threadIdx.x % kWarpSize;
  const int warp = threadIdx.x / kWarpSize;
  warp_best(score, pos);
  if (lane == 0) {
    warp_score[warp] = score;
    warp_pos[warp] = pos;
  }
  __syncthreads();
  if (warp == 0) {
    const int num_warps = blockDim.x / kWarpSize;
    score = lane < num_warps ? warp_score[lane] : dead_score<T>();
    pos = lane < num_warps ? warp_pos[lane] : -1;
    warp_best(score, pos);
    if (lane == 0) {
      *best_score = score;
      *best_pos = pos;
    }
  }
  __syncthreads();
}

template <typename T>
__global__ void __launch_bounds__(kMaxThreads)
    soft_nms_kernel(const T* __restrict__ segments, const T* __restrict__ scores,
                    const int64_t* __restrict__ order, const int64_t* __restrict__ offsets,
                    const Params<T> params, const int shared_capacity,
                    T* __restrict__ workspace, int64_t* __restrict__ out_pos,
                    T* __restrict__ out_score, int64_t* __restrict__ out_count,
                    int* __restrict__ value_errors) {
  extern __shared__ __align__(16) unsigned char shared_raw[];
  __shared__ T warp_score[kMaxThreads / kWarpSize];
  __shared__ int warp_pos[kMaxThreads / kWarpSize];
  __shared__ T best_score;
  __shared__ int best_pos;

  const int64_t group = blockIdx.x;
  const int64_t begin = offsets[group];
  const int n = static_cast<int>(offsets[group + 1] - begin);
  T* start = n <= shared_capacity ? reinterpret_cast<T*>(shared_raw) : workspace + 3 * begin;
  T* end = start + n;
  T* score = end + n;

  // Load the group, check its values, drop candidates under min_score, and find the first
  // selection.
  T my_score = dead_score<T>();
  int my_pos = -1;
  int errors = 0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    const int64_t k = order[begin + i];
    const T a = segments[2 * k];
    const T b = segments[2 * k + 1];
    start[i] = a;
    end[i] = b;
    T s = scores[k];
    if (!isfinite(s)) errors |= kNonFiniteScore;
    if (!isfinite(a) || !isfinite(b)) {
      errors |= kNonFiniteSegment;
    } else if (b < a) {
      errors |= kReversedSegment;
    }
    if (s < params.min_score) s = dead_score<T>();
    score[i] = s;
    if (s != dead_score<T>()) keep_better(my_score, my_pos, s, i);
  }
  if (errors) atomicOr(value_errors, errors);
  // A thread reads only its own score[i] entries below, but start/end of the selection
  // come from other threads' loads.
  __syncthreads();

  const int64_t limit = params.max_per_group < 0 ? n : min(int64_t(n), params.max_per_group);
  int64_t kept = 0;
  while (kept < limit) {
    block_best(my_score, my_pos, warp_score, warp_pos, &best_score, &best_pos);
    const int sel = best_pos;  // the same for every thread: the loop exits uniformly
    if (sel < 0) break;
    if (threadIdx.x == 0) {
      out_pos[begin + kept] = begin + sel;
      out_score[begin + kept] = best_score;
    }
    ++kept;
    const T sel_start = start[sel];
    const T sel_end = end[sel];
    my_score = dead_score<T>();
    my_pos = -1;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
      T s = score[i];
      if (s == dead_score<T>()) continue;
      if (i == sel) {
        score[i] = dead_score<T>();
        continue;
      }
      s *= decay_weight(params, segment_iou(sel_start, sel_end, start[i], end[i]));
      if (s < params.min_score) {
        score[i] = dead_score<T>();
        continue;
      }
      score[i] = s;
      keep_better(my_score, my_pos, s, i);
    }
  }
  if (threadIdx.x == 0) out_count[group] = kept;
}

// Candidates of one group that fit in the kernel's dynamic shared memory on `device`.
template <typename T>
cudaError_t shared_capacity(int device, int* capacity) {
  int bytes = 0;
  const cudaError_t err =
      dynamic_shared_limit(reinterpret_cast<const void*>(&soft_nms_kernel<T>), device, &bytes);
  *capacity = bytes / bytes_per_candidate<T>();
  return err;
}

int threads_for(int64_t max_group_size) {
  if (max_group_size <= 64) return 64;
  if (max_group_size <= 128) return 128;
  return kMaxThreads;
}

}  // namespace

template <typename T>
cudaError_t cuda_workspace_bytes(int64_t num_candidates, int64_t max_group_size, int device,
                                 int64_t* bytes) {
  int capacity = 0;
  const cudaError_t err = shared_capacity<T>(device, &capacity);
  *bytes = max_group_size <= capacity ? 0 : num_candidates * bytes_per_candidate<T>();
  return err;
}

template <typename T>
cudaError_t launch_soft_nms(const T* segments, const T* scores, const int64_t* order,
                            const int64_t* offsets, int64_t num_groups, int64_t max_group_size,
                            const Params<T>& params, void* workspace, int64_t* out_pos,
                            T* out_score, int64_t* out_count, int* value_errors, int device,
                            cudaStream_t stream) {
  if (num_groups == 0) return cudaSuccess;
  int capacity = 0;
  const cudaError_t err = shared_capacity<T>(device, &capacity);
  if (err != cudaSuccess) return err;
  const int64_t in_shared = max_group_size < capacity ? max_group_size : capacity;
  const int shared_bytes = static_cast<int>(in_shared) * bytes_per_candidate<T>();
  soft_nms_kernel<T><<<static_cast<unsigned int>(num_groups), threads_for(max_group_size),
                       shared_bytes, stream>>>(
      segments, scores, order, offsets, params, static_cast<int>(in_shared),
      static_cast<T*>(workspace), out_pos, out_score, out_count, value_errors);
  return cudaGetLastError();
}

#define PYTAL_INSTANTIATE(T)                                                                  \
  template cudaError_t cuda_workspace_bytes<T>(int64_t, int64_t, int, int64_t*);             \
  template cudaError_t launch_soft_nms<T>(const T*, const T*, const int64_t*, const int64_t*, \
                                          int64_t, int64_t, const Params<T>&, void*, int64_t*, \
                                          T*, int64_t*, int*, int, cudaStream_t);
PYTAL_INSTANTIATE(float)
PYTAL_INSTANTIATE(double)
#undef PYTAL_INSTANTIATE

}  // namespace soft_nms
}  // namespace pytal
