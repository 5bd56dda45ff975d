#include "soft_nms/soft_nms_host.h"

#include <limits>

#include "common/checks.h"

namespace pytal {
namespace soft_nms {

Method parse_method(std::string_view method) {
  if (method == "gaussian") return Method::kGaussian;
  if (method == "linear") return Method::kLinear;
  if (method == "hard") return Method::kHard;
  TORCH_CHECK(false, "method must be \"gaussian\", \"linear\" or \"hard\", got \"",
              std::string(method), "\"");
}

void check_inputs(const at::Tensor& segments, const at::Tensor& scores,
                  const std::optional<at::Tensor>& groups, double iou_threshold, double sigma,
                  double min_score, std::string_view method, int64_t max_per_group) {
  check_dim(segments, 2, "segments", "(N, 2)");
  check_size(segments, 1, 2, "segments", "(N, 2)");
  check_dim(scores, 1, "scores", "(N,)");
  TORCH_CHECK(scores.size(0) == segments.size(0), "scores must have shape (N,) = (",
              segments.size(0), ",) to match segments, got ", shape_of(scores));
  check_floating(segments, "segments", /*allow_half=*/false);
  TORCH_CHECK(scores.scalar_type() == segments.scalar_type(),
              "scores must have the dtype of segments (", segments.scalar_type(), "), got ",
              scores.scalar_type());
  check_same_device(scores, segments, "scores", "segments");
  TORCH_CHECK(segments.size(0) < std::numeric_limits<int32_t>::max(),
              "soft_nms supports fewer than 2^31 - 1 candidates, got ", segments.size(0));
  if (groups.has_value()) {
    const auto& g = *groups;
    check_dim(g, 1, "groups", "(N,)");
    TORCH_CHECK(g.size(0) == segments.size(0), "groups must have shape (N,) = (",
                segments.size(0), ",) to match segments, got ", shape_of(g));
    check_dtype(g, at::kLong, "groups");
    check_same_device(g, segments, "groups", "segments");
  }
  TORCH_CHECK(iou_threshold >= 0.0 && iou_threshold <= 1.0,
              "iou_threshold must be in [0, 1], got ", iou_threshold);
  TORCH_CHECK(sigma > 0.0 && std::isfinite(sigma), "sigma must be a positive number, got ",
              sigma);
  TORCH_CHECK(std::isfinite(min_score), "min_score must be finite, got ", min_score);
  TORCH_CHECK(max_per_group >= -1, "max_per_group must be -1 (no limit) or >= 0, got ",
              max_per_group);
  parse_method(method);
  check_finite(scores, "scores");
  check_finite(segments, "segments");
  if (segments.size(0) > 0) {
    TORCH_CHECK((segments.select(1, 1) >= segments.select(1, 0)).all().item<bool>(),
                "segments must satisfy end >= start (segments[:, 1] >= segments[:, 0])");
  }
}

Partition partition_by_group(const std::optional<at::Tensor>& groups, int64_t n,
                             const at::TensorOptions& index_options) {
  Partition part;
  if (!groups.has_value()) {
    part.order = at::arange(n, index_options);
    part.offsets = at::tensor({int64_t{0}, n}, index_options.device(at::kCPU))
                       .to(index_options.device());
    part.num_groups = 1;
    part.max_group_size = n;
    return part;
  }
  auto [sorted, order] = groups->sort(/*stable=*/true, /*dim=*/0, /*descending=*/false);
  auto [unique, inverse, counts] =
      at::unique_consecutive(sorted, /*return_inverse=*/false, /*return_counts=*/true);
  part.order = order;
  part.offsets = at::cat({at::zeros({1}, counts.options()), counts.cumsum(0)});
  part.num_groups = counts.size(0);
  part.max_group_size = counts.max().item<int64_t>();
  return part;
}

std::tuple<at::Tensor, at::Tensor> gather_kept(const Partition& part, const at::Tensor& out_pos,
                                               const at::Tensor& out_score,
                                               const at::Tensor& counts) {
  const int64_t n = out_pos.size(0);
  // Slot i of group g is valid when i < offsets[g] + counts[g].
  const auto sizes = part.offsets.diff();
  const auto slot_limit = (part.offsets.narrow(0, 0, part.num_groups) + counts)
                              .repeat_interleave(sizes, /*dim=*/0, /*output_size=*/n);
  const auto slot = at::arange(n, out_pos.options());
  const auto valid = slot < slot_limit;
  const auto keep = part.order.index_select(0, out_pos.masked_select(valid));
  return {keep, out_score.masked_select(valid)};
}

std::tuple<at::Tensor, at::Tensor> empty_result(const at::Tensor& scores) {
  return {at::empty({0}, scores.options().dtype(at::kLong)), at::empty({0}, scores.options())};
}

}  // namespace soft_nms
}  // namespace pytal
