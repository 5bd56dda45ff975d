// Batched 1D real FFTs of gmg's CUDA path on cuFFT, with plans cached per (device, length,
// chunk rows, precision, direction); a batch runs as power-of-two chunks of rows. Unnormalised, like cuFFT: the kernels apply 1/sqrt(T) each way.
#pragma once

#include <ATen/ATen.h>

namespace pytal {
namespace gmg {

// real (rows, T) contiguous float/double -> spec (rows, T/2+1, 2) of the same dtype. A `real`
// not aligned to the complex type is copied first.
void cufft_r2c(const at::Tensor& real, const at::Tensor& spec);

// spec (rows, T/2+1, 2) -> real (rows, T). spec is overwritten (cuFFT's C2R works in place).
void cufft_c2r(const at::Tensor& spec, const at::Tensor& real);

}  // namespace gmg
}  // namespace pytal
