// Launch helpers shared by the .cu files (nvcc only; no torch headers).
#pragma once

#include <cuda_runtime_api.h>

#include <map>
#include <mutex>
#include <utility>

namespace pytal {

// The most dynamic shared memory, in bytes, that a launch of `kernel` on `device` may ask for:
// the device's opt-in limit per block minus the kernel's own static shared memory (without the
// opt-in, static + dynamic must stay within 48 KiB). The first call for a (kernel, device)
// raises the kernel's cudaFuncAttributeMaxDynamicSharedMemorySize to that value, under a lock;
// later calls only read the cached answer, so no launch ever changes the attribute and
// concurrent callers cannot lower it under each other.
inline cudaError_t dynamic_shared_limit(const void* kernel, int device, int* bytes) {
  static std::mutex mutex;
  static std::map<std::pair<const void*, int>, int> limits;
  const std::lock_guard<std::mutex> lock(mutex);
  const auto key = std::make_pair(kernel, device);
  const auto found = limits.find(key);
  if (found != limits.end()) {
    *bytes = found->second;
    return cudaSuccess;
  }
  int previous = 0;
  cudaError_t err = cudaGetDevice(&previous);
  if (err != cudaSuccess) return err;
  if (previous != device && (err = cudaSetDevice(device)) != cudaSuccess) return err;
  int optin = 0;
  cudaFuncAttributes attributes{};
  err = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  if (err == cudaSuccess) err = cudaFuncGetAttributes(&attributes, kernel);
  const int limit = optin - static_cast<int>(attributes.sharedSizeBytes);
  if (err == cudaSuccess) {
    err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, limit);
  }
  if (previous != device) {
    const cudaError_t restored = cudaSetDevice(previous);
    if (err == cudaSuccess) err = restored;
  }
  if (err != cudaSuccess) return err;
  limits.emplace(key, limit);
  *bytes = limit;
  return cudaSuccess;
}

}  // namespace pytal
