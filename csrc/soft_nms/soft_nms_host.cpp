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

void check_arguments(const at::Tensor& segments, const at::Tensor& scores,
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
}

void raise_value_error(bool non_finite_scores, bool non_finite_segments,
                       bool reversed_segments) {
  TORCH_CHECK_VALUE(!non_finite_scores,
                    "pytal.ops.soft_nms: scores must be finite, got NaN or infinity");
  TORCH_CHECK_VALUE(!non_finite_segments,
                    "pytal.ops.soft_nms: segments must be finite, got NaN or infinity");
  TORCH_CHECK_VALUE(!reversed_segments,
                    "pytal.ops.soft_nms: segments must satisfy end >= start "
                    "(segments[:, 1] >= segments[:, 0])");
}

Partition partition_by_group(const std::optional<at::Tensor>& groups, int64_t n,
                             const at::TensorOptions& index_options) {
  Partition part;
  if (!groups.has_value()) {
    part.order = at::arange(n, index_options);
    part.offsets = at::arange(2, index_options) * n;
    part.num_groups = 1;
    part.max_group_size = n;
    return part;
  }
  // Group sizes by a scatter over the sorted groups, so that the group count and the largest
  // group reach the host together in one copy (one synchronisation on CUDA).
  auto [sorted, order] = groups->sort(/*stable=*/true, /*dim=*/0, /*descending=*/false);
  auto first = at::ones({n}, sorted.options().dtype(at::kBool));
  if (n > 1) first.narrow(0, 1, n - 1).copy_(sorted.diff().ne(0));
  const auto group_of = first.to(at::kLong).cumsum(0) - 1;  // (N,) 0 .. G-1
  const auto counts = at::zeros({n}, index_options).scatter_add_(0, group_of, at::ones_like(group_of));
  const auto sizes = at::stack({group_of[n - 1] + 1, counts.max()}).cpu();
  part.order = order;
  part.num_groups = sizes[0].item<int64_t>();
  part.max_group_size = sizes[1].item<int64_t>();
  part.offsets = at::cat({at::zeros({1}, counts.options()),
                          counts.narrow(0, 0, part.num_groups).cumsum(0)});
  return part;
}

std::tuple<at::Tensor, at::Tensor> gather_kept(const Partition& part, const at::Tensor& out_pos,
                                               const at::Tensor& out_score,
                                               const at::Tensor& counts) {
  return gather_kept(part, out_pos, out_score, counts, counts.sum().item<int64_t>());
}

std::tuple<at::Tensor, at::Tensor> gather_kept(const Partition& part, const at::Tensor& out_pos,
                                               const at::Tensor& out_score,
                                               const at::Tensor& counts, int64_t total) {
  const int64_t n = out_pos.size(0);
  // Slot i of group g is valid when i < offsets[g] + counts[g].
  const auto sizes = part.offsets.diff();
  const auto slot_limit = (part.offsets.narrow(0, 0, part.num_groups) + counts)
                              .repeat_interleave(sizes, /*dim=*/0, /*output_size=*/n);
  const auto slot = at::arange(n, out_pos.options());
  const auto valid_slots = at::nonzero_static(slot < slot_limit, total).select(1, 0);
  const auto keep = part.order.index_select(0, out_pos.index_select(0, valid_slots));
  return {keep, out_score.index_select(0, valid_slots)};
}

std::tuple<at::Tensor, at::Tensor> empty_result(const at::Tensor& scores) {
  return {at::empty({0}, scores.options().dtype(at::kLong)), at::empty({0}, scores.options())};
}

}  // namespace soft_nms
}  // namespace pytal
