// Helpers for code shared by the CPU and CUDA kernels. Include no torch headers here: this
// file is compiled by nvcc as well as by the host compiler.
#pragma once

#if defined(__CUDACC__) || defined(__HIPCC__)
#define PYTAL_HOST_DEVICE __host__ __device__
#else
#define PYTAL_HOST_DEVICE
#endif

#include <cmath>
#include <cstdint>
#include <limits>

namespace pytal {

template <typename T>
PYTAL_HOST_DEVICE inline T min_of(T a, T b) { return b < a ? b : a; }

template <typename T>
PYTAL_HOST_DEVICE inline T max_of(T a, T b) { return a < b ? b : a; }

// exp for float and double that resolves to the CUDA intrinsic on the device and std::exp
// on the host.
PYTAL_HOST_DEVICE inline float exp_of(float x) {
#if defined(__CUDA_ARCH__)
  return expf(x);
#else
  return std::exp(x);
#endif
}
PYTAL_HOST_DEVICE inline double exp_of(double x) {
#if defined(__CUDA_ARCH__)
  return ::exp(x);
#else
  return std::exp(x);
#endif
}

// log for float and double, likewise.
PYTAL_HOST_DEVICE inline float log_of(float x) {
#if defined(__CUDA_ARCH__)
  return logf(x);
#else
  return std::log(x);
#endif
}
PYTAL_HOST_DEVICE inline double log_of(double x) {
#if defined(__CUDA_ARCH__)
  return ::log(x);
#else
  return std::log(x);
#endif
}

template <typename T>
PYTAL_HOST_DEVICE inline T negative_infinity() { return -std::numeric_limits<T>::infinity(); }

}  // namespace pytal
