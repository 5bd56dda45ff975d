// cuFFT plans for gmg (see gmg_cufft.h). Plans are made without their own work area: each
// call takes one from PyTorch's caching allocator on the current stream, so a plan can be
// shared by streams safely and its memory is not held between calls.
//
// A batch of rows runs as chunks whose row counts are powers of two up to kMaxPlanRows (the
// binary decomposition of the row count, largest first), so every (length, precision,
// direction) needs at most log2(kMaxPlanRows) + 1 plans whatever the batch sizes.
#include "gmg/gmg_cufft.h"

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cufft.h>

#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <tuple>

namespace pytal {
namespace gmg {
namespace {

// Plans kept at most; beyond it the cache is emptied (after each device that owns one of its
// plans finishes its work).
constexpr size_t kMaxPlans = 64;
// Rows of the largest plan.
constexpr int64_t kMaxPlanRows = 16384;

#define PYTAL_CUFFT_CHECK(expr)                                                   \
  do {                                                                            \
    const cufftResult status_ = (expr);                                           \
    TORCH_CHECK(status_ == CUFFT_SUCCESS, "gmg: cuFFT call ", #expr,              \
                " failed with cufftResult ", static_cast<int>(status_));          \
  } while (0)

struct Plan {
  cufftHandle handle;
  size_t work_bytes;
};

using PlanKey = std::tuple<int, int64_t, int64_t, cufftType>;  // device, T, plan rows, type

// The row count of the chunk that starts the remaining `rows`: the largest power of two
// <= rows, capped at kMaxPlanRows.
int64_t chunk_rows(int64_t rows) {
  int64_t chunk = 1;
  while (chunk * 2 <= rows && chunk * 2 <= kMaxPlanRows) chunk *= 2;
  return chunk;
}

class PlanCache {
 public:
  // Runs exec(handle) with the plan of key, its work area set and the stream bound.
  template <typename Exec>
  void run(const PlanKey& key, const at::Tensor& like, Exec exec) {
    std::lock_guard<std::mutex> lock(mutex_);
    const Plan& plan = get(key);
    const auto stream = c10::cuda::getCurrentCUDAStream(std::get<0>(key));
    at::Tensor work;
    if (plan.work_bytes > 0) {
      work = at::empty({static_cast<int64_t>(plan.work_bytes)}, like.options().dtype(at::kByte));
      PYTAL_CUFFT_CHECK(cufftSetWorkArea(plan.handle, work.data_ptr()));
    }
    PYTAL_CUFFT_CHECK(cufftSetStream(plan.handle, stream.stream()));
    exec(plan.handle);
  }

  ~PlanCache() { clear(); }

 private:
  const Plan& get(const PlanKey& key) {
    auto found = plans_.find(key);
    if (found != plans_.end()) return found->second;
    if (plans_.size() >= kMaxPlans) clear();
    const auto [device, length, rows, type] = key;
    Plan plan{};
    PYTAL_CUFFT_CHECK(cufftCreate(&plan.handle));
    PYTAL_CUFFT_CHECK(cufftSetAutoAllocation(plan.handle, 0));
    long long n = length;
    PYTAL_CUFFT_CHECK(cufftMakePlanMany64(plan.handle, 1, &n, nullptr, 1, 0, nullptr, 1, 0, type,
                                          rows, &plan.work_bytes));
    return plans_.emplace(key, plan).first->second;
  }

  // Destroys every plan once the devices that may still run them are idle.
  void clear() {
    std::set<int> devices;
    for (const auto& entry : plans_) devices.insert(std::get<0>(entry.first));
    for (const int device : devices) {
      const c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device));
      cudaDeviceSynchronize();
    }
    for (auto& entry : plans_) cufftDestroy(entry.second.handle);
    plans_.clear();
  }

  std::mutex mutex_;
  std::map<PlanKey, Plan> plans_;
};

PlanCache& plan_cache() {
  static PlanCache* cache = new PlanCache();  // never destroyed: CUDA may be gone at exit
  return *cache;
}

// cuFFT needs its input and output aligned to the complex type (PyTorch's own FFTs clone
// such inputs too): a float32 view with an odd element offset is not.
at::Tensor aligned_for_fft(const at::Tensor& t) {
  const auto address = reinterpret_cast<std::uintptr_t>(t.data_ptr());
  return address % (2 * t.element_size()) == 0 ? t : t.clone();
}

// Runs exec(plan, first_row, rows) over the chunks of `rows` (see chunk_rows); every chunk but
// the last starts at an even row, so chunk pointers keep the complex alignment.
template <typename Exec>
void for_each_chunk(int device, int64_t length, int64_t rows, cufftType type,
                    const at::Tensor& like, Exec exec) {
  for (int64_t first = 0; first < rows;) {
    const int64_t chunk = chunk_rows(rows - first);
    plan_cache().run(PlanKey{device, length, chunk, type}, like,
                     [&](cufftHandle plan) { exec(plan, first); });
    first += chunk;
  }
}

}  // namespace

void cufft_r2c(const at::Tensor& real_rows, const at::Tensor& spec) {
  const int64_t rows = real_rows.size(0), length = real_rows.size(1);
  const c10::cuda::CUDAGuard guard(real_rows.device());
  if (length == 1) {  // a length-1 transform is the identity (cuFFT plans start at 2)
    spec.select(2, 0).copy_(real_rows);
    spec.select(2, 1).zero_();
    return;
  }
  const auto real = aligned_for_fft(real_rows);
  const int64_t bins = length / 2 + 1;
  const bool dbl = real.scalar_type() == at::kDouble;
  for_each_chunk(real.get_device(), length, rows, dbl ? CUFFT_D2Z : CUFFT_R2C, real,
                 [&](cufftHandle plan, int64_t first) {
    if (dbl) {
      PYTAL_CUFFT_CHECK(cufftExecD2Z(
          plan, real.data_ptr<double>() + first * length,
          reinterpret_cast<cufftDoubleComplex*>(spec.data_ptr<double>() + first * bins * 2)));
    } else {
      PYTAL_CUFFT_CHECK(cufftExecR2C(
          plan, real.data_ptr<float>() + first * length,
          reinterpret_cast<cufftComplex*>(spec.data_ptr<float>() + first * bins * 2)));
    }
  });
}

void cufft_c2r(const at::Tensor& spec, const at::Tensor& real) {
  const int64_t rows = real.size(0), length = real.size(1);
  const c10::cuda::CUDAGuard guard(real.device());
  if (length == 1) {
    real.copy_(spec.select(2, 0));
    return;
  }
  TORCH_INTERNAL_ASSERT(aligned_for_fft(real).is_same(real) && aligned_for_fft(spec).is_same(spec),
                        "gmg: cuFFT output buffers must be aligned to the complex type");
  const int64_t bins = length / 2 + 1;
  const bool dbl = real.scalar_type() == at::kDouble;
  for_each_chunk(real.get_device(), length, rows, dbl ? CUFFT_Z2D : CUFFT_C2R, real,
                 [&](cufftHandle plan, int64_t first) {
    if (dbl) {
      PYTAL_CUFFT_CHECK(cufftExecZ2D(
          plan, reinterpret_cast<cufftDoubleComplex*>(spec.data_ptr<double>() + first * bins * 2),
          real.data_ptr<double>() + first * length));
    } else {
      PYTAL_CUFFT_CHECK(cufftExecC2R(
          plan, reinterpret_cast<cufftComplex*>(spec.data_ptr<float>() + first * bins * 2),
          real.data_ptr<float>() + first * length));
    }
  });
}

}  // namespace gmg
}  // namespace pytal
