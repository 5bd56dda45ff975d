#include "soft_nms/soft_nms_cpu_host.h"

#include <ATen/Dispatch.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "soft_nms/soft_nms_host.h"

namespace pytal {
namespace soft_nms {

namespace {

template <typename T>
void check_values(const T* segments, const T* scores, int64_t n) {
  bool finite_scores = true, finite_segments = true, ordered = true;
  for (int64_t i = 0; i < n; ++i) {
    const T s = segments[2 * i];
    const T e = segments[2 * i + 1];
    finite_scores &= std::isfinite(scores[i]);
    finite_segments &= std::isfinite(s) & std::isfinite(e);
    ordered &= e >= s;
  }
  raise_value_error(!finite_scores, !finite_segments, !ordered);
}

// Appends to `offsets` the start of every run of equal values of key(0..n-1), then n.
template <typename Key>
void run_offsets(int64_t n, Key key, std::vector<int64_t>& offsets) {
  offsets.clear();
  for (int64_t i = 0; i < n; ++i) {
    if (i == 0 || key(i) != key(i - 1)) offsets.push_back(i);
  }
  offsets.push_back(n);
}

}  // namespace

void check_values_cpu(const at::Tensor& segments, const at::Tensor& scores) {
  AT_DISPATCH_FLOATING_TYPES(scores.scalar_type(), "soft_nms_check_values", [&] {
    check_values(segments.data_ptr<scalar_t>(), scores.data_ptr<scalar_t>(), scores.size(0));
  });
}

CpuGroups group_candidates_cpu(const std::optional<at::Tensor>& groups, int64_t n) {
  CpuGroups part;
  if (!groups.has_value()) {
    part.offsets = {0, n};
    return part;
  }
  const auto contiguous = groups->contiguous();
  const int64_t* g = contiguous.data_ptr<int64_t>();
  bool sorted = true;
  int64_t lo = n ? g[0] : 0, hi = lo;
  for (int64_t i = 1; i < n; ++i) {
    sorted &= g[i - 1] <= g[i];
    lo = std::min(lo, g[i]);
    hi = std::max(hi, g[i]);
  }
  if (sorted) {
    run_offsets(n, [&](int64_t i) { return g[i]; }, part.offsets);
    return part;
  }
  part.order.resize(n);
  // Unsigned: the span of any two int64 values fits.
  const uint64_t span = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);
  if (span < static_cast<uint64_t>(4 * n)) {  // counting sort, stable
    std::vector<int64_t> start(span + 2, 0);
    for (int64_t i = 0; i < n; ++i) ++start[static_cast<uint64_t>(g[i]) - lo + 1];
    std::partial_sum(start.begin(), start.end(), start.begin());
    for (int64_t i = 0; i < n; ++i) part.order[start[static_cast<uint64_t>(g[i]) - lo]++] = i;
  } else {
    std::iota(part.order.begin(), part.order.end(), int64_t{0});
    std::stable_sort(part.order.begin(), part.order.end(),
                     [&](int64_t a, int64_t b) { return g[a] < g[b]; });
  }
  run_offsets(n, [&](int64_t i) { return g[part.order[i]]; }, part.offsets);
  return part;
}

std::vector<int64_t> group_videos_cpu(const CpuGroups& part, const at::Tensor& videos) {
  const auto contiguous = videos.contiguous();
  const int64_t* v = contiguous.data_ptr<int64_t>();
  const int64_t num_groups = part.num_groups();
  std::vector<int64_t> video_groups;
  for (int64_t g = 0; g < num_groups; ++g) {
    const int64_t video = v[part.input_index(part.offsets[g])];
    for (int64_t i = part.offsets[g] + 1; i < part.offsets[g + 1]; ++i) {
      TORCH_CHECK(v[part.input_index(i)] == video,
                  "soft_nms_top_k: every group must lie in one video (videos[i] equal for all "
                  "i of a group)");
    }
    if (g > 0) {
      const int64_t previous = v[part.input_index(part.offsets[g - 1])];
      TORCH_CHECK(previous <= video,
                  "soft_nms_top_k: groups must be numbered in video order (a higher video "
                  "has higher group numbers)");
      if (previous == video) continue;
    }
    video_groups.push_back(g);
  }
  video_groups.push_back(num_groups);
  return video_groups;
}

}  // namespace soft_nms
}  // namespace pytal
