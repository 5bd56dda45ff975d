// CUDA registration of boundary_pool / segment_pool: tensor handling on the host, the kernels
// in boundary_pool_cuda.cu.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <limits>

#include "common/cuda_pointers.h"
#include "boundary_pool/boundary_pool_cuda.h"
#include "boundary_pool/boundary_pool_host.h"

namespace pytal {
namespace boundary_pool {
namespace {

void check_grid(const Problem& p) {
  TORCH_CHECK(p.rows() < std::numeric_limits<int32_t>::max(),
              "features must have B * C < 2^31 - 1 on CUDA, got ", p.rows());
}

at::Tensor pool_forward(const at::Tensor& features, const at::Tensor& segments, int groups,
                        Mode mode, const char* op) {
  const Problem p = check_inputs(features, segments, groups, op);
  auto out = at::empty({p.batch, p.channels, p.intervals}, features.options());
  if (p.empty()) return out;
  check_grid(p);
  const c10::cuda::CUDAGuard guard(features.device());
  const int device = features.get_device();
  const auto stream = c10::cuda::getCurrentCUDAStream(device);
  const auto feats = features.contiguous();
  const auto bounds = interval_bounds(segments, p, op);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, feats.scalar_type(),
                                  "boundary_pool_forward_cuda", [&] {
    C10_CUDA_CHECK(launch_pool_forward(cuda_ptr<scalar_t>(feats), bounds.const_data_ptr<int32_t>(),
                                       p, mode, cuda_mut_ptr<scalar_t>(out), device,
                                       stream.stream()));
  });
  return out;
}

at::Tensor pool_backward(const at::Tensor& grad_output, const at::Tensor& features,
                         const at::Tensor& segments, int groups, Mode mode, const char* op) {
  const Problem p = check_inputs(features, segments, groups, op);
  check_grad(grad_output, features, p);
  if (p.empty()) return at::zeros_like(features, at::MemoryFormat::Contiguous);
  check_grid(p);
  const c10::cuda::CUDAGuard guard(features.device());
  const int device = features.get_device();
  const auto stream = c10::cuda::getCurrentCUDAStream(device);
  auto grad_in = at::empty_like(features, at::MemoryFormat::Contiguous);
  const auto feats = features.contiguous();
  const auto grad = grad_output.contiguous();
  const auto bounds = interval_bounds(segments, p, op);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, feats.scalar_type(),
                                  "boundary_pool_backward_cuda", [&] {
    using cuda_t = typename CudaType<scalar_t>::type;
    int64_t ws_bytes = 0;
    C10_CUDA_CHECK(backward_workspace_bytes<cuda_t>(p, mode, device, &ws_bytes));
    at::Tensor workspace;
    if (ws_bytes > 0) workspace = at::empty({ws_bytes}, feats.options().dtype(at::kByte));
    C10_CUDA_CHECK(launch_pool_backward(
        cuda_ptr<scalar_t>(feats), cuda_ptr<scalar_t>(grad), bounds.const_data_ptr<int32_t>(), p,
        mode, ws_bytes > 0 ? workspace.mutable_data_ptr() : nullptr,
        cuda_mut_ptr<scalar_t>(grad_in), device, stream.stream()));
  });
  return grad_in;
}

at::Tensor boundary_pool_cuda(const at::Tensor& features, const at::Tensor& segments) {
  return pool_forward(features, segments, 2, Mode::kMax, "boundary_pool");
}

at::Tensor boundary_pool_backward_cuda(const at::Tensor& grad_output,
                                       const at::Tensor& features, const at::Tensor& segments) {
  return pool_backward(grad_output, features, segments, 2, Mode::kMax, "boundary_pool");
}

at::Tensor segment_pool_cuda(const at::Tensor& features, const at::Tensor& segments,
                             std::string_view mode) {
  return pool_forward(features, segments, 1, parse_mode(mode), "segment_pool");
}

at::Tensor segment_pool_backward_cuda(const at::Tensor& grad_output,
                                      const at::Tensor& features, const at::Tensor& segments,
                                      std::string_view mode) {
  return pool_backward(grad_output, features, segments, 1, parse_mode(mode), "segment_pool");
}

}  // namespace

TORCH_LIBRARY_IMPL(pytal, CUDA, m) {
  m.impl("boundary_pool", &boundary_pool_cuda);
  m.impl("boundary_pool_backward", &boundary_pool_backward_cuda);
  m.impl("segment_pool", &segment_pool_cuda);
  m.impl("segment_pool_backward", &segment_pool_backward_cuda);
}

}  // namespace boundary_pool
}  // namespace pytal
