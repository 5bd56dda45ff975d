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

// Candidates sorted by group; groups in video order. video_offsets (V + 1): video v holds
// groups [video_groups[v], video_groups[v + 1]) and sorted positions
// [video_offsets[v], video_offsets[v + 1]).
struct VideoPartition {
  Partition groups;
  Partition videos;  // the same order, partitioned by video
  at::Tensor video_groups;
};

VideoPartition partition_by_video(const at::Tensor& groups, const at::Tensor& videos) {
  const int64_t n = groups.size(0);
  VideoPartition vp;
  vp.groups = partition_by_group(groups, n, groups.options());
  const auto sorted_videos = videos.index_select(0, vp.groups.order);
  const auto group_video = sorted_videos.index_select(0, vp.groups.offsets.narrow(0, 0,
                                                                 vp.groups.num_groups));
  TORCH_CHECK(at::equal(sorted_videos, group_video.repeat_interleave(vp.groups.offsets.diff())),
              "soft_nms_top_k: every group must lie in one video (videos[i] equal for all i "
              "of a group)");
  TORCH_CHECK(vp.groups.num_groups < 2 ||
                  (group_video.diff() >= 0).all().item<bool>(),
              "soft_nms_top_k: groups must be numbered in video order (a higher video has "
              "higher group numbers)");
  auto [unique, inverse, counts] =
      at::unique_consecutive(group_video, /*return_inverse=*/false, /*return_counts=*/true);
  vp.video_groups = at::cat({at::zeros({1}, counts.options()), counts.cumsum(0)});
  vp.videos.order = vp.groups.order;
  vp.videos.offsets = vp.groups.offsets.index_select(0, vp.video_groups);
  vp.videos.num_groups = counts.size(0);
  return vp;
}

std::tuple<at::Tensor, at::Tensor> soft_nms_top_k_cpu(const at::Tensor& segments,
                                                      const at::Tensor& scores,
                                                      const at::Tensor& groups,
                                                      const at::Tensor& videos,
                                                      double iou_threshold, double sigma,
                                                      double min_score, std::string_view method,
                                                      int64_t k) {
  check_inputs(segments, scores, groups, iou_threshold, sigma, min_score, method, -1);
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

  const auto vp = partition_by_video(groups, videos);
  const auto segs = segments.contiguous();
  const auto scs = scores.contiguous();
  auto out_pos = at::empty({n}, groups.options());
  auto out_score = at::empty({n}, scores.options());
  auto counts = at::zeros({vp.videos.num_groups}, groups.options());

  AT_DISPATCH_FLOATING_TYPES(scores.scalar_type(), "soft_nms_top_k_cpu", [&] {
    const auto params = make_params<scalar_t>(iou_threshold, sigma, min_score, method, -1);
    const scalar_t* seg = segs.data_ptr<scalar_t>();
    const scalar_t* sc = scs.data_ptr<scalar_t>();
    const int64_t* order = vp.groups.order.data_ptr<int64_t>();
    const int64_t* group_offsets = vp.groups.offsets.data_ptr<int64_t>();
    const int64_t* video_groups = vp.video_groups.data_ptr<int64_t>();
    int64_t* pos_out = out_pos.data_ptr<int64_t>();
    scalar_t* score_out = out_score.data_ptr<scalar_t>();
    int64_t* count_out = counts.data_ptr<int64_t>();

    at::parallel_for(0, vp.videos.num_groups, 1, [&](int64_t first, int64_t last) {
      std::vector<scalar_t> start, end, score;  // work arrays, reused across videos
      LazyWorkspace<scalar_t> ws;
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
        load_candidates(seg, sc, order, begin, size, start, end, score);
        ws.reserve(size);
        lazy.clear();
        heap.clear();
        for (int64_t g = g0; g < g1; ++g) {
          const int64_t at = group_offsets[g] - begin;
          const int64_t n_g = group_offsets[g + 1] - group_offsets[g];
          // A group is asked for at most k selections plus the one pending in the merge.
          lazy.emplace_back(start.data() + at, end.data() + at, score.data() + at, n_g, params,
                            ws.heap.data() + at, ws.applied.data() + at,
                            ws.sel_start.data() + at, ws.sel_end.data() + at,
                            std::min(n_g, k + 1));
          Pending<scalar_t> p{scalar_t(0), 0, g};
          if (lazy.back().next(p.idx, p.score)) heap.push_back(p);
        }
        std::make_heap(heap.begin(), heap.end(), after);
        int64_t kept = 0;
        while (!heap.empty() && kept < k) {
          std::pop_heap(heap.begin(), heap.end(), after);
          auto& best = heap.back();
          pos_out[begin + kept] = group_offsets[best.group] + best.idx;
          score_out[begin + kept] = best.score;
          ++kept;
          if (lazy[best.group - g0].next(best.idx, best.score)) {
            std::push_heap(heap.begin(), heap.end(), after);
          } else {
            heap.pop_back();
          }
        }
        count_out[v] = kept;
      }
    });
  });
  return gather_kept(vp.videos, out_pos, out_score, counts);
}

}  // namespace

TORCH_LIBRARY_IMPL(pytal, CPU, m) { m.impl("soft_nms_top_k", &soft_nms_top_k_cpu); }

}  // namespace soft_nms
}  // namespace pytal
