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

// Long-row backward, O(T + K log K) per row: every output's contribution is keyed by the
// flat position it adds to, the keys are sorted stably (so each position keeps the CPU
// kernel's order: ascending k, and for mean the start before the end of each interval) and
// each position sums its run. Max: grad_out[k] at the first argmax. Mean: grad_out[k] / length
// at lo and its negation at hi + 1 of a float64 difference array, whose prefix sums along the
// row are the gradient.
at::Tensor long_rows_backward(const at::Tensor& feats, const at::Tensor& grad,
                              const at::Tensor& bounds, const Problem& p, Mode mode,
                              cudaStream_t stream) {
  const auto long_opts = feats.options().dtype(at::kLong);
  const auto row_index = at::arange(p.rows(), long_opts).unsqueeze(1);  // (R, 1)
  if (mode == Mode::kMax) {
    auto argmax = at::empty({p.rows(), p.intervals}, feats.options().dtype(at::kInt));
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, feats.scalar_type(),
                                    "boundary_pool_argmax_cuda", [&] {
      C10_CUDA_CHECK(launch_pool_argmax(cuda_ptr<scalar_t>(feats),
                                        bounds.const_data_ptr<int32_t>(), p,
                                        argmax.mutable_data_ptr<int32_t>(), stream));
    });
    const auto keys = (argmax.to(at::kLong) + row_index * p.length).flatten();
    const auto [sorted, order] = keys.sort(/*stable=*/true, 0, /*descending=*/false);
    auto grad_in = at::empty({p.batch, p.channels, p.length}, feats.options());
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, feats.scalar_type(),
                                    "boundary_pool_sum_sorted_cuda", [&] {
      C10_CUDA_CHECK(launch_sum_sorted(cuda_ptr<scalar_t>(grad), sorted.const_data_ptr<int64_t>(),
                                       order.const_data_ptr<int64_t>(), sorted.numel(),
                                       grad_in.numel(), cuda_mut_ptr<scalar_t>(grad_in), stream));
    });
    return grad_in;
  }
  // Mean (segment_pool: one interval group): the intervals of row (b, c) are those of batch b.
  TORCH_INTERNAL_ASSERT(p.groups == 1, "mean pooling has one interval group");
  const auto lohi = bounds.view({p.batch, 1, p.intervals, 2})
                        .expand({p.batch, p.channels, p.intervals, 2})
                        .reshape({p.rows(), p.intervals, 2})
                        .to(at::kLong);
  const auto lo = lohi.select(2, 0), end = lohi.select(2, 1) + 1;
  const auto share = grad.view({p.rows(), p.intervals}).to(at::kDouble) / (end - lo).to(at::kDouble);
  const int64_t width = p.length + 1;
  const auto keys = at::stack({lo, end}, 2).add_(row_index.unsqueeze(2) * width).flatten();
  const auto values = at::stack({share, -share}, 2).flatten();
  const auto [sorted, order] = keys.sort(/*stable=*/true, 0, /*descending=*/false);
  auto diff = at::empty({p.rows(), width}, values.options());
  C10_CUDA_CHECK(launch_sum_sorted(values.const_data_ptr<double>(),
                                   sorted.const_data_ptr<int64_t>(),
                                   order.const_data_ptr<int64_t>(), sorted.numel(), diff.numel(),
                                   diff.mutable_data_ptr<double>(), stream));
  return diff.cumsum(1).narrow(1, 0, p.length).reshape({p.batch, p.channels, p.length})
      .to(feats.scalar_type());
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
  const auto feats = features.contiguous();
  const auto grad = grad_output.contiguous();
  const auto bounds = interval_bounds(segments, p, op);
  bool rows = false;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, feats.scalar_type(),
                                  "boundary_pool_backward_path_cuda", [&] {
    C10_CUDA_CHECK(backward_uses_rows<typename CudaType<scalar_t>::type>(p, mode, device, &rows));
  });
  if (!rows) return long_rows_backward(feats, grad, bounds, p, mode, stream.stream());
  auto grad_in = at::empty_like(features, at::MemoryFormat::Contiguous);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, feats.scalar_type(),
                                  "boundary_pool_backward_cuda", [&] {
    C10_CUDA_CHECK(launch_pool_backward_rows(cuda_ptr<scalar_t>(feats), cuda_ptr<scalar_t>(grad),
                                             bounds.const_data_ptr<int32_t>(), p, mode,
                                             cuda_mut_ptr<scalar_t>(grad_in), device,
                                             stream.stream()));
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
