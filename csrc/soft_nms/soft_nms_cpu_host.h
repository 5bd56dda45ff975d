// Host-side pieces of the CPU soft_nms kernels (soft_nms, soft_nms_top_k): the value checks,
// the partition of candidates into groups and videos, and the gathering of the selections,
// as plain loops over the tensors' memory. A call on a few thousand candidates then costs
// a few microseconds around its kernel instead of a dozen ATen ops.
#pragma once

#include <ATen/ATen.h>

#include <numeric>
#include <optional>
#include <tuple>
#include <vector>

namespace pytal {
namespace soft_nms {

// Raises ValueError (scores before segments, as raise_value_error) unless every score and
// segment bound is finite and every segment has end >= start. segments: (n, 2), scores:
// (n,), contiguous, float32 or float64.
void check_values_cpu(const at::Tensor& segments, const at::Tensor& scores);

// Candidates sorted by group, stably (positions within a group follow input order).
struct CpuGroups {
  std::vector<int64_t> order;    // (N,) input index of each sorted position; empty: identity
  std::vector<int64_t> offsets;  // (G + 1,) group g holds positions [offsets[g], offsets[g+1])

  int64_t num_groups() const { return static_cast<int64_t>(offsets.size()) - 1; }
  int64_t input_index(int64_t position) const {
    return order.empty() ? position : order[position];
  }
};

// groups: (n,) int64 or none (one group). Groups already in ascending order cost one pass;
// otherwise a counting sort when the group numbers span at most a few times n, else a
// stable sort.
CpuGroups group_candidates_cpu(const std::optional<at::Tensor>& groups, int64_t n);

// The groups' videos: (V + 1,) video v holds groups [result[v], result[v + 1]). videos: (n,)
// int64. Checks that every group lies in one video and that groups are numbered in video
// order (raising RuntimeError naming soft_nms_top_k).
std::vector<int64_t> group_videos_cpu(const CpuGroups& part, const at::Tensor& videos);

// Kernels write the selections of part s (a group, or a video of groups) to slots
// [offsets[s], offsets[s] + counts[s]) of out_pos (sorted positions) and out_score.
// Returns (keep, new_scores): input indices and scores, parts ascending, each in the order
// written; new_scores with the options of `scores`. T: float or double.
template <typename T>
std::tuple<at::Tensor, at::Tensor> gather_kept_cpu(const CpuGroups& part,
                                                   const std::vector<int64_t>& offsets,
                                                   const std::vector<int64_t>& counts,
                                                   const std::vector<int64_t>& out_pos,
                                                   const std::vector<T>& out_score,
                                                   const at::Tensor& scores) {
  const int64_t total = std::accumulate(counts.begin(), counts.end(), int64_t{0});
  auto keep = at::empty({total}, scores.options().dtype(at::kLong));
  auto new_scores = at::empty({total}, scores.options());
  int64_t* keep_out = keep.data_ptr<int64_t>();
  T* score_out = new_scores.data_ptr<T>();
  int64_t m = 0;
  for (size_t s = 0; s < counts.size(); ++s) {
    for (int64_t i = offsets[s]; i < offsets[s] + counts[s]; ++i, ++m) {
      keep_out[m] = part.input_index(out_pos[i]);
      score_out[m] = out_score[i];
    }
  }
  return {keep, new_scores};
}

}  // namespace soft_nms
}  // namespace pytal
