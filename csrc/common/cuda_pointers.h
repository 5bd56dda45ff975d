// Raw device pointers of ATen tensors in the types the .cu launch functions take: at::Half and
// at::BFloat16 become CUDA's __half and __nv_bfloat16 (same bits); other types are unchanged.
// For the *_cuda_host.cpp files only (host compiler, CUDA builds).
#pragma once

#include <ATen/ATen.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace pytal {

template <typename T>
struct CudaType {
  using type = T;
};
template <>
struct CudaType<at::Half> {
  using type = __half;
};
template <>
struct CudaType<at::BFloat16> {
  using type = __nv_bfloat16;
};

template <typename T>
const typename CudaType<T>::type* cuda_ptr(const at::Tensor& t) {
  return reinterpret_cast<const typename CudaType<T>::type*>(t.const_data_ptr<T>());
}

template <typename T>
typename CudaType<T>::type* cuda_mut_ptr(const at::Tensor& t) {
  return reinterpret_cast<typename CudaType<T>::type*>(t.data_ptr<T>());
}

}  // namespace pytal
