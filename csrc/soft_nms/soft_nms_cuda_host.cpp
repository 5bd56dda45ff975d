// CUDA registration of soft_nms: tensor handling on the host, the kernel in soft_nms_cuda.cu.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "soft_nms/soft_nms_cuda.h"
#include "soft_nms/soft_nms_host.h"

namespace pytal {
namespace soft_nms {
namespace {

// Synchronisations: one for the group sizes when `groups` is given (none without groups), and
// one for the number of selections together with the kernel's value checks.
std::tuple<at::Tensor, at::Tensor> soft_nms_cuda(const at::Tensor& segments,
                                                 const at::Tensor& scores,
                                                 const std::optional<at::Tensor>& groups,
                                                 double iou_threshold, double sigma,
                                                 double min_score, std::string_view method,
                                                 int64_t max_per_group) {
  check_arguments(segments, scores, groups, iou_threshold, sigma, min_score, method,
                  max_per_group);
  const int64_t n = segments.size(0);
  if (n == 0) return empty_result(scores);
  const c10::cuda::CUDAGuard guard(segments.device());
  const int device = segments.get_device();
  const auto stream = c10::cuda::getCurrentCUDAStream(device);

  const auto part = partition_by_group(groups, n, scores.options().dtype(at::kLong));
  const auto segs = segments.contiguous();
  const auto scs = scores.contiguous();
  auto out_pos = at::empty({n}, part.order.options());
  auto out_score = at::empty({n}, scores.options());
  auto counts = at::empty({part.num_groups}, part.order.options());
  auto value_errors = at::zeros({1}, scores.options().dtype(at::kInt));

  AT_DISPATCH_FLOATING_TYPES(scores.scalar_type(), "soft_nms_cuda", [&] {
    const auto params =
        make_params<scalar_t>(iou_threshold, sigma, min_score, method, max_per_group);
    int64_t ws_bytes = 0;
    C10_CUDA_CHECK(cuda_workspace_bytes<scalar_t>(n, part.max_group_size, device, &ws_bytes));
    at::Tensor workspace;
    if (ws_bytes > 0) workspace = at::empty({ws_bytes}, scores.options().dtype(at::kByte));
    C10_CUDA_CHECK(launch_soft_nms<scalar_t>(
        segs.data_ptr<scalar_t>(), scs.data_ptr<scalar_t>(), part.order.data_ptr<int64_t>(),
        part.offsets.data_ptr<int64_t>(), part.num_groups, part.max_group_size, params,
        ws_bytes > 0 ? workspace.data_ptr() : nullptr, out_pos.data_ptr<int64_t>(),
        out_score.data_ptr<scalar_t>(), counts.data_ptr<int64_t>(),
        value_errors.data_ptr<int>(), device, stream.stream()));
  });
  const auto summary = at::stack({counts.sum(), value_errors[0].to(at::kLong)}).cpu();
  const int64_t errors = summary[1].item<int64_t>();
  raise_value_error(errors & kNonFiniteScore, errors & kNonFiniteSegment,
                    errors & kReversedSegment);
  return gather_kept(part, out_pos, out_score, counts, summary[0].item<int64_t>());
}

}  // namespace

TORCH_LIBRARY_IMPL(pytal, CUDA, m) { m.impl("soft_nms", &soft_nms_cuda); }

}  // namespace soft_nms
}  // namespace pytal
