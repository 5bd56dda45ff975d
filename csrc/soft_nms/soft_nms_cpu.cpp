// CPU kernel of soft_nms: groups in parallel (at::parallel_for), each group sequential, with
// lazily applied decays (soft_nms_lazy.h) unless a candidate has a negative score.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <vector>

#include "soft_nms/soft_nms.h"
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
  check_inputs(segments, scores, groups, iou_threshold, sigma, min_score, method, max_per_group);
  const int64_t n = segments.size(0);
  if (n == 0) return empty_result(scores);

  const auto part = partition_by_group(groups, n, scores.options().dtype(at::kLong));
  const auto segs = segments.contiguous();
  const auto scs = scores.contiguous();
  auto out_pos = at::empty({n}, part.order.options());
  auto out_score = at::empty({n}, scores.options());
  auto counts = at::zeros({part.num_groups}, part.order.options());

  AT_DISPATCH_FLOATING_TYPES(scores.scalar_type(), "soft_nms_cpu", [&] {
    const auto params =
        make_params<scalar_t>(iou_threshold, sigma, min_score, method, max_per_group);
    const scalar_t* seg = segs.data_ptr<scalar_t>();
    const scalar_t* sc = scs.data_ptr<scalar_t>();
    const int64_t* order = part.order.data_ptr<int64_t>();
    const int64_t* offsets = part.offsets.data_ptr<int64_t>();
    int64_t* pos_out = out_pos.data_ptr<int64_t>();
    scalar_t* score_out = out_score.data_ptr<scalar_t>();
    int64_t* count_out = counts.data_ptr<int64_t>();

    at::parallel_for(0, part.num_groups, 1, [&](int64_t first, int64_t last) {
      std::vector<scalar_t> start, end, score;  // work arrays, reused across groups
      std::vector<int64_t> pos;
      LazyWorkspace<scalar_t> lazy;
      for (int64_t g = first; g < last; ++g) {
        const int64_t begin = offsets[g];
        const int64_t size = offsets[g + 1] - begin;
        load_candidates(seg, sc, order, begin, size, start, end, score);
        if (lazy_applies(score.data(), size, params)) {
          count_out[g] = soft_nms_lazy(start.data(), end.data(), score.data(), size, params,
                                       begin, pos_out + begin, score_out + begin, lazy);
          continue;
        }
        pos.resize(size);
        for (int64_t i = 0; i < size; ++i) pos[i] = begin + i;
        count_out[g] = soft_nms_sequential(start.data(), end.data(), score.data(), pos.data(),
                                           size, params, pos_out + begin, score_out + begin);
      }
    });
  });
  return gather_kept(part, out_pos, out_score, counts);
}

}  // namespace

TORCH_LIBRARY_IMPL(pytal, CPU, m) { m.impl("soft_nms", &soft_nms_cpu); }

}  // namespace soft_nms
}  // namespace pytal
