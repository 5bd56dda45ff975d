// Soft-NMS math shared by the CPU and CUDA kernels (docs/ops.md, "soft_nms").
// Compiled by both the host compiler and nvcc: no torch headers.
#pragma once

#include "common/host_device.h"

namespace pytal {
namespace soft_nms {

enum class Method : int { kGaussian = 0, kLinear = 1, kHard = 2 };

// Parameters of one call, in the scores' floating type.
template <typename T>
struct Params {
  T iou_threshold;
  T sigma;
  T min_score;
  Method method;
  int64_t max_per_group;  // < 0: no limit
};

// Length of [s, e] as the IoU uses it: +1e-6, so that zero-length segments give IoU 0 with
// everything instead of 0/0.
template <typename T>
PYTAL_HOST_DEVICE inline T segment_length(T s, T e) { return (e - s) + T(1e-6); }

// Temporal IoU of [s1, e1] and [s2, e2] given their segment_length()s. The order of
// operations matches the reference.
template <typename T>
PYTAL_HOST_DEVICE inline T segment_iou(T s1, T e1, T len1, T s2, T e2, T len2) {
  const T inter = max_of(T(0), min_of(e1, e2) - max_of(s1, s2));
  return inter / ((len1 + len2) - inter);
}

template <typename T>
PYTAL_HOST_DEVICE inline T segment_iou(T s1, T e1, T s2, T e2) {
  return segment_iou(s1, e1, segment_length(s1, e1), s2, e2, segment_length(s2, e2));
}

// The factor a remaining segment's score is multiplied by, given its IoU with the segment
// just selected.
template <typename T>
PYTAL_HOST_DEVICE inline T decay_weight(const Params<T>& p, T iou) {
  switch (p.method) {
    case Method::kGaussian:
      return exp_of(-(iou * iou) / p.sigma);
    case Method::kLinear:
      return iou >= p.iou_threshold ? T(1) - iou : T(1);
    default:  // kHard
      return iou >= p.iou_threshold ? T(0) : T(1);
  }
}

// Selection order: higher score first; on equal scores, the lower position (positions
// within a group follow the input order, so this is the lower input index).
template <typename T>
PYTAL_HOST_DEVICE inline bool ranks_before(T score_a, int64_t pos_a, T score_b, int64_t pos_b) {
  return score_a > score_b || (score_a == score_b && pos_a < pos_b);
}

// Score of a candidate that was selected or dropped (used by the CUDA kernel, which does
// not compact). Inputs are checked to be finite, so no live candidate has this score.
template <typename T>
PYTAL_HOST_DEVICE inline T dead_score() { return negative_infinity<T>(); }

// Sequential Soft-NMS of one group whose candidates are stored contiguously in work arrays:
// start[i], end[i], score[i] and pos[i] (the candidate's position in its group, which orders
// ties) for i in [0, n). The arrays are overwritten: the remaining candidates are kept
// compacted at the front, so each selection costs one pass over the candidates still alive,
// in which decaying, dropping those under min_score and finding the next best are fused.
// Writes the selected positions and their scores to out_pos / out_score in selection order
// and returns how many were selected.
template <typename T>
PYTAL_HOST_DEVICE inline int64_t soft_nms_sequential(T* start, T* end, T* score, int64_t* pos,
                                                    int64_t n, const Params<T>& p,
                                                    int64_t* out_pos, T* out_score) {
  const int64_t limit = p.max_per_group < 0 ? n : min_of(n, p.max_per_group);
  // Drop the candidates under min_score and find the first selection.
  int64_t alive = 0;
  int64_t best = -1;
  for (int64_t i = 0; i < n; ++i) {
    if (score[i] < p.min_score) continue;
    start[alive] = start[i];
    end[alive] = end[i];
    score[alive] = score[i];
    pos[alive] = pos[i];
    if (best < 0 || ranks_before(score[alive], pos[alive], score[best], pos[best])) best = alive;
    ++alive;
  }
  int64_t kept = 0;
  while (best >= 0 && kept < limit) {
    const T sel_start = start[best];
    const T sel_end = end[best];
    out_pos[kept] = pos[best];
    out_score[kept] = score[best];
    ++kept;
    int64_t next_alive = 0;
    int64_t next_best = -1;
    for (int64_t i = 0; i < alive; ++i) {
      if (i == best) continue;
      const T iou = segment_iou(sel_start, sel_end, start[i], end[i]);
      const T s = score[i] * decay_weight(p, iou);
      if (s < p.min_score) continue;
      const int64_t k = next_alive++;  // k <= i: compaction in place is safe
      start[k] = start[i];
      end[k] = end[i];
      score[k] = s;
      pos[k] = pos[i];
      if (next_best < 0 || ranks_before(s, pos[k], score[next_best], pos[next_best])) {
        next_best = k;
      }
    }
    alive = next_alive;
    best = next_best;
  }
  return kept;
}

}  // namespace soft_nms
}  // namespace pytal
