// cuFFT plans for gmg (see gmg_cufft.h). Plans are made without their own work area: each
// call takes one from PyTorch's caching allocator on the current stream, so a plan can be
// shared by streams safely and its memory is not held between calls.
#include "gmg/gmg_cufft.h"

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cufft.h>

#include <map>
#include <mutex>
#include <tuple>

namespace pytal {
namespace gmg {
namespace {

// Plans kept at most; beyond it the cache is emptied (after the device finishes its work).
constexpr size_t kMaxPlans = 64;

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

using PlanKey = std::tuple<int, int64_t, int64_t, cufftType>;  // device, T, rows, type

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
    if (plans_.size() >= kMaxPlans) {
      cudaDeviceSynchronize();
      clear();
    }
    const auto [device, length, rows, type] = key;
    Plan plan{};
    PYTAL_CUFFT_CHECK(cufftCreate(&plan.handle));
    PYTAL_CUFFT_CHECK(cufftSetAutoAllocation(plan.handle, 0));
    long long n = length;
    PYTAL_CUFFT_CHECK(cufftMakePlanMany64(plan.handle, 1, &n, nullptr, 1, 0, nullptr, 1, 0, type,
                                          rows, &plan.work_bytes));
    return plans_.emplace(key, plan).first->second;
  }

  void clear() {
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

}  // namespace

void cufft_r2c(const at::Tensor& real, const at::Tensor& spec) {
  const int64_t rows = real.size(0), length = real.size(1);
  const c10::cuda::CUDAGuard guard(real.device());
  if (length == 1) {  // a length-1 transform is the identity (cuFFT plans start at 2)
    spec.select(2, 0).copy_(real);
    spec.select(2, 1).zero_();
    return;
  }
  const bool dbl = real.scalar_type() == at::kDouble;
  const PlanKey key{real.get_device(), length, rows, dbl ? CUFFT_D2Z : CUFFT_R2C};
  plan_cache().run(key, real, [&](cufftHandle plan) {
    if (dbl) {
      PYTAL_CUFFT_CHECK(cufftExecD2Z(plan, real.data_ptr<double>(),
                                     reinterpret_cast<cufftDoubleComplex*>(spec.data_ptr<double>())));
    } else {
      PYTAL_CUFFT_CHECK(cufftExecR2C(plan, real.data_ptr<float>(),
                                     reinterpret_cast<cufftComplex*>(spec.data_ptr<float>())));
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
  const bool dbl = real.scalar_type() == at::kDouble;
  const PlanKey key{real.get_device(), length, rows, dbl ? CUFFT_Z2D : CUFFT_C2R};
  plan_cache().run(key, real, [&](cufftHandle plan) {
    if (dbl) {
      PYTAL_CUFFT_CHECK(cufftExecZ2D(plan,
                                     reinterpret_cast<cufftDoubleComplex*>(spec.data_ptr<double>()),
                                     real.data_ptr<double>()));
    } else {
      PYTAL_CUFFT_CHECK(cufftExecC2R(plan, reinterpret_cast<cufftComplex*>(spec.data_ptr<float>()),
                                     real.data_ptr<float>()));
    }
  });
}

}  // namespace gmg
}  // namespace pytal
