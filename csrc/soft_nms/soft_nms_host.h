// Host-side pieces of soft_nms: the argument checks and the value errors of every
// registration, and, for tensors on any device (the CUDA registration; the CPU kernels use
// the plain loops of soft_nms_cpu_host.h), the partition of candidates into groups and the
// gathering of each group's selections into the op's outputs, as ATen ops.
#pragma once

#include <ATen/ATen.h>

#include <string_view>
#include <tuple>

#include "soft_nms/soft_nms.h"

namespace pytal {
namespace soft_nms {

// Candidates sorted by group, stably, so that positions within a group follow input order.
struct Partition {
  at::Tensor order;    // (N,) int64: input index of each sorted position
  at::Tensor offsets;  // (G + 1,) int64: group g holds sorted positions [offsets[g], offsets[g+1])
  int64_t num_groups = 0;
  int64_t max_group_size = 0;
};

Method parse_method(std::string_view method);

// Checks the arguments that need no tensor values (shapes, dtypes, devices, scalar ranges),
// with messages that name the argument.
void check_arguments(const at::Tensor& segments, const at::Tensor& scores,
                     const std::optional<at::Tensor>& groups, double iou_threshold, double sigma,
                     double min_score, std::string_view method, int64_t max_per_group);

// Raises ValueError (scores before segments) for the first flag that is set.
void raise_value_error(bool non_finite_scores, bool non_finite_segments, bool reversed_segments);

Partition partition_by_group(const std::optional<at::Tensor>& groups, int64_t n,
                             const at::TensorOptions& index_options);

// Kernels write the selections of group g to slots [offsets[g], offsets[g] + counts[g]) of
// out_pos (sorted positions) and out_score. Returns (keep, new_scores): input indices and
// scores, groups ascending, each in selection order.
std::tuple<at::Tensor, at::Tensor> gather_kept(const Partition& part, const at::Tensor& out_pos,
                                               const at::Tensor& out_score,
                                               const at::Tensor& counts);
// The same when the number of selections (counts.sum()) is already known on the host: no
// synchronisation.
std::tuple<at::Tensor, at::Tensor> gather_kept(const Partition& part, const at::Tensor& out_pos,
                                               const at::Tensor& out_score,
                                               const at::Tensor& counts, int64_t total);

std::tuple<at::Tensor, at::Tensor> empty_result(const at::Tensor& scores);

template <typename T>
Params<T> make_params(double iou_threshold, double sigma, double min_score,
                      std::string_view method, int64_t max_per_group) {
  return Params<T>{static_cast<T>(iou_threshold), static_cast<T>(sigma),
                   static_cast<T>(min_score), parse_method(method), max_per_group};
}

}  // namespace soft_nms
}  // namespace pytal
