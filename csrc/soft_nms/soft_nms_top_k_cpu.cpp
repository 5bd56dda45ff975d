// CPU kernel of soft_nms_top_k: the Soft-NMS selections of every group merged, per video,
// into that video's best k (score descending; ties: lower group, then selection order).
// Within a group selected scores never increase (scores are non-negative and every decay is
// in [0, 1]), so the merge needs from each group only its selections down to the video's
// k-th best: the groups' selections are produced one at a time (LazyGroup) as the merge
// asks for them. Videos in parallel (at::parallel_for), each video sequential.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "common/checks.h"
#include "soft_nms/soft_nms.h"
#include "soft_nms/soft_nms_cpu_host.h"
#include "soft_nms/soft_nms_host.h"
#include "soft_nms/soft_nms_lazy.h"

namespace pytal {
namespace soft_nms {
namespace {

// The video's next selection from one of its groups.
template <typename T>
struct Pending {
  T score;
  int32_t idx;    // position in the group
  int64_t group;  // group number (groups ascending)
};

template <typename T>
bool pending_ranks_before(const Pending<T>& a, const Pending<T>& b) {
  return ranks_before(a.score, a.group, b.score, b.group);
}

std::tuple<at::Tensor, at::Tensor> soft_nms_top_k_cpu(const at::Tensor& segments,
                                                      const at::Tensor& scores,
                                                      const at::Tensor& groups,
                                                      const at::Tensor& videos,
                                                      double iou_threshold, double sigma,
                                                      double min_score, std::string_view method,
                                                      int64_t k) {
  check_arguments(segments, scores, groups, iou_threshold, sigma, min_score, method, -1);
  check_dim(videos, 1, "videos", "(N,)");
  TORCH_CHECK(videos.size(0) == segments.size(0), "videos must have shape (N,) = (",
              segments.size(0), ",) to match segments, got ", shape_of(videos));
  check_dtype(videos, at::kLong, "videos");
  check_same_device(videos, segments, "videos", "segments");
  TORCH_CHECK(min_score >= 0.0, "soft_nms_top_k needs min_score >= 0 (selected scores then "
              "never increase), got ", min_score);
  TORCH_CHECK(k >= 0, "k must be >= 0, got ", k);
  const int64_t n = segments.size(0);
  if (n == 0) return empty_result(scores);
  const auto segs = segments.contiguous();
  const auto scs = scores.contiguous();
  check_values_cpu(segs, scs);
  const CpuGroups part = group_candidates_cpu(groups, n);
  const std::vector<int64_t> video_groups = group_videos_cpu(part, videos);
  const int64_t num_videos = static_cast<int64_t>(video_groups.size()) - 1;
  std::vector<int64_t> video_offsets(num_videos + 1);
  for (int64_t v = 0; v <= num_videos; ++v) video_offsets[v] = part.offsets[video_groups[v]];
  std::vector<int64_t> counts(num_videos);
  std::vector<int64_t> out_pos(n);

  return AT_DISPATCH_FLOATING_TYPES(scores.scalar_type(), "soft_nms_top_k_cpu", [&] {
    const auto params = make_params<scalar_t>(iou_threshold, sigma, min_score, method, -1);
    const scalar_t* seg = segs.data_ptr<scalar_t>();
    const scalar_t* sc = scs.data_ptr<scalar_t>();
    const int64_t* order = part.order.empty() ? nullptr : part.order.data();
    const int64_t* group_offsets = part.offsets.data();
    std::vector<scalar_t> out_score(n);

    at::parallel_for(0, num_videos, 1, [&](int64_t first, int64_t last) {
      LazyWorkspace<scalar_t> ws;  // reused across videos
      std::vector<LazyGroup<scalar_t>> lazy;
      std::vector<Pending<scalar_t>> heap;  // a binary heap, best first
      const auto after = [](const Pending<scalar_t>& a, const Pending<scalar_t>& b) {
        return pending_ranks_before(b, a);
      };
      for (int64_t v = first; v < last; ++v) {
        const int64_t g0 = video_groups[v];
        const int64_t g1 = video_groups[v + 1];
        const int64_t begin = group_offsets[g0];
        const int64_t size = group_offsets[g1] - begin;
        load_candidates(seg, sc, order, begin, size, ws);
        lazy.clear();
        heap.clear();
        for (int64_t g = g0; g < g1; ++g) {
          const int64_t at = group_offsets[g] - begin;
          const int64_t n_g = group_offsets[g + 1] - group_offsets[g];
          // A group is asked for at most k selections plus the one pending in the merge.
          lazy.emplace_back(ws, at, n_g, params, std::min(n_g, k + 1));
          Pending<scalar_t> p{scalar_t(0), 0, g};
          if (lazy.back().next(p.idx, p.score)) heap.push_back(p);
        }
        std::make_heap(heap.begin(), heap.end(), after);
        int64_t kept = 0;
        while (!heap.empty() && kept < k) {
          std::pop_heap(heap.begin(), heap.end(), after);
          auto& best = heap.back();
          out_pos[begin + kept] = group_offsets[best.group] + best.idx;
          out_score[begin + kept] = best.score;
          ++kept;
          if (lazy[best.group - g0].next(best.idx, best.score)) {
            std::push_heap(heap.begin(), heap.end(), after);
          } else {
            heap.pop_back();
          }
        }
        counts[v] = kept;
      }
    });
    return gather_kept_cpu(part, video_offsets, counts, out_pos, out_score, scores);
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(pytal, CPU, m) { m.impl("soft_nms_top_k", &soft_nms_top_k_cpu); }

}  // namespace soft_nms
}  // namespace pytal
