// CPU kernel of soft_nms: groups in parallel (at::parallel_for), each group sequential, with
// lazily applied decays (soft_nms_lazy.h) unless a candidate has a negative score.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <vector>

#include "soft_nms/soft_nms.h"
#include "soft_nms/soft_nms_cpu_host.h"
#include "soft_nms/soft_nms_host.h"
#include "soft_nms/soft_nms_lazy.h"

namespace pytal {
namespace soft_nms {
namespace {

std::tuple<at::Tensor, at::Tensor> soft_nms_cpu(const at::Tensor& segments,
                                                const at::Tensor& scores,
                                                const std::optional<at::Tensor>& groups,
                                                double iou_threshold, double sigma,
                                                double min_score, std::string_view method,
                                                int64_t max_per_group) {
  check_arguments(segments, scores, groups, iou_threshold, sigma, min_score, method,
                  max_per_group);
  const int64_t n = segments.size(0);
  if (n == 0) return empty_result(scores);
  const auto segs = segments.contiguous();
  const auto scs = scores.contiguous();
  check_values_cpu(segs, scs);
  const CpuGroups part = group_candidates_cpu(groups, n);
  const int64_t num_groups = part.num_groups();
  std::vector<int64_t> counts(num_groups);
  std::vector<int64_t> out_pos(n);

  return AT_DISPATCH_FLOATING_TYPES(scores.scalar_type(), "soft_nms_cpu", [&] {
    const auto params =
        make_params<scalar_t>(iou_threshold, sigma, min_score, method, max_per_group);
    const scalar_t* seg = segs.data_ptr<scalar_t>();
    const scalar_t* sc = scs.data_ptr<scalar_t>();
    const int64_t* order = part.order.empty() ? nullptr : part.order.data();
    std::vector<scalar_t> out_score(n);

    at::parallel_for(0, num_groups, 1, [&](int64_t first, int64_t last) {
      LazyWorkspace<scalar_t> ws;  // reused across groups
      std::vector<int64_t> pos;
      for (int64_t g = first; g < last; ++g) {
        const int64_t begin = part.offsets[g];
        const int64_t size = part.offsets[g + 1] - begin;
        load_candidates(seg, sc, order, begin, size, ws);
        if (lazy_applies(ws.score.data(), size, params)) {
          counts[g] = soft_nms_lazy(ws, size, params, begin, out_pos.data() + begin,
                                    out_score.data() + begin);
          continue;
        }
        pos.resize(size);
        for (int64_t i = 0; i < size; ++i) pos[i] = begin + i;
        counts[g] = soft_nms_sequential(ws.start.data(), ws.end.data(), ws.score.data(),
                                        pos.data(), size, params, out_pos.data() + begin,
                                        out_score.data() + begin);
      }
    });
    return gather_kept_cpu(part, part.offsets, counts, out_pos, out_score, scores);
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(pytal, CPU, m) { m.impl("soft_nms", &soft_nms_cpu); }

}  // namespace soft_nms
}  // namespace pytal
