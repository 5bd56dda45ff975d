// Soft-NMS of one group with lazily applied decays (CPU only).
//
// A candidate's score at any moment is its input score multiplied by the decay of every
// segment selected so far, in selection order, until it first falls under min_score. With
// non-negative scores each decay is in [0, 1], so a score computed before some selections
// is an upper bound of the current one. The candidates sit in a binary max-heap keyed by
// such a bound (ties: lower position first); a candidate reaching the top is brought up to
// date by applying, in order, the decays of the selections made since it was last updated,
// and is selected only once its key is current. Every other candidate's current score is
// at most its key, which ranks after the top's, so this is the same selection, with the
// same multiplications in the same order, as updating every candidate after every
// selection (soft_nms_sequential) -- while only the candidates that come near the top are
// ever updated, and a selection that does not overlap a candidate costs two comparisons
// instead of an IoU and an exp.
#pragma once

#include <cstdint>
#include <vector>

#include "soft_nms/soft_nms.h"

namespace pytal {
namespace soft_nms {

// Work arrays of one thread, reused across its groups.
template <typename T>
struct LazyWorkspace {
  struct Entry {
    T key;        // an upper bound of the candidate's current score
    int32_t idx;  // the candidate's position in its group
  };
  std::vector<Entry> heap;
  std::vector<int32_t> applied;  // per candidate: how many selections its key includes
  std::vector<T> sel_start, sel_end;
};

template <typename T>
inline bool entry_ranks_before(const typename LazyWorkspace<T>::Entry& a,
                               const typename LazyWorkspace<T>::Entry& b) {
  return ranks_before(a.key, int64_t{a.idx}, b.key, int64_t{b.idx});
}

template <typename T>
inline void sift_down(typename LazyWorkspace<T>::Entry* heap, int64_t size, int64_t i) {
  const auto item = heap[i];
  while (true) {
    int64_t child = 2 * i + 1;
    if (child >= size) break;
    if (child + 1 < size && entry_ranks_before<T>(heap[child + 1], heap[child])) ++child;
    if (!entry_ranks_before<T>(heap[child], item)) break;
    heap[i] = heap[child];
    i = child;
  }
  heap[i] = item;
}

// True when every candidate that passes min_score has a non-negative score, the condition
// under which soft_nms_lazy applies.
template <typename T>
inline bool lazy_applies(const T* score, int64_t n, const Params<T>& p) {
  for (int64_t i = 0; i < n; ++i) {
    if (score[i] >= p.min_score && score[i] < T(0)) return false;
  }
  return true;
}

// Soft-NMS of one group of n candidates given in group order (start, end, score; read
// only). Writes the selected positions (pos_base + position in the group) and their scores
// to out_pos / out_score in selection order; returns how many were selected. Requires
// lazy_applies(score, n, p).
template <typename T>
int64_t soft_nms_lazy(const T* start, const T* end, const T* score, int64_t n,
                      const Params<T>& p, int64_t pos_base, int64_t* out_pos, T* out_score,
                      LazyWorkspace<T>& ws) {
  const int64_t limit = p.max_per_group < 0 ? n : min_of(n, p.max_per_group);
  ws.heap.resize(n);
  ws.applied.assign(n, 0);
  ws.sel_start.resize(limit);
  ws.sel_end.resize(limit);
  auto* heap = ws.heap.data();
  int32_t* applied = ws.applied.data();
  T* sel_start = ws.sel_start.data();
  T* sel_end = ws.sel_end.data();

  int64_t size = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (score[i] >= p.min_score) heap[size++] = {score[i], static_cast<int32_t>(i)};
  }
  for (int64_t i = size / 2 - 1; i >= 0; --i) sift_down<T>(heap, size, i);

  // A segment that does not overlap the selected one has IoU 0; skipping it is exact when
  // the decay at IoU 0 is exactly 1 (every method, except "hard" with iou_threshold 0).
  const bool skip_disjoint = decay_weight(p, T(0)) == T(1);
  int32_t kept = 0;
  while (size > 0 && kept < limit) {
    auto& top = heap[0];
    const int32_t j = top.idx;
    if (applied[j] == kept) {  // current: the best candidate
      out_pos[kept] = pos_base + j;
      out_score[kept] = top.key;
      sel_start[kept] = start[j];
      sel_end[kept] = end[j];
      ++kept;
      heap[0] = heap[--size];
      sift_down<T>(heap, size, 0);
      continue;
    }
    const T s0 = start[j];
    const T e0 = end[j];
    T s = top.key;
    bool dropped = false;
    for (int32_t k = applied[j]; k < kept; ++k) {
      if (skip_disjoint && (sel_end[k] <= s0 || e0 <= sel_start[k])) continue;
      s *= decay_weight(p, segment_iou(sel_start[k], sel_end[k], s0, e0));
      if (s < p.min_score) {
        dropped = true;
        break;
      }
    }
    applied[j] = kept;
    if (dropped) {
      heap[0] = heap[--size];
    } else {
      top.key = s;
    }
    sift_down<T>(heap, size, 0);
  }
  return kept;
}

}  // namespace soft_nms
}  // namespace pytal
