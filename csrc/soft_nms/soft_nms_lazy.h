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

template <typename T>
struct HeapEntry {
  T key;        // an upper bound of the candidate's current score
  int32_t idx;  // the candidate's position in its group
};

template <typename T>
inline bool entry_ranks_before(const HeapEntry<T>& a, const HeapEntry<T>& b) {
  return ranks_before(a.key, int64_t{a.idx}, b.key, int64_t{b.idx});
}

template <typename T>
inline void sift_down(HeapEntry<T>* heap, int64_t size, int64_t i) {
  const auto item = heap[i];
  while (true) {
    int64_t child = 2 * i + 1;
    if (child >= size) break;
    if (child + 1 < size && entry_ranks_before(heap[child + 1], heap[child])) ++child;
    if (!entry_ranks_before(heap[child], item)) break;
    heap[i] = heap[child];
    i = child;
  }
  heap[i] = item;
}

// True when every candidate that passes min_score has a non-negative score, the condition
// under which LazyGroup applies.
template <typename T>
inline bool lazy_applies(const T* score, int64_t n, const Params<T>& p) {
  for (int64_t i = 0; i < n; ++i) {
    if (score[i] >= p.min_score && score[i] < T(0)) return false;
  }
  return true;
}

// Soft-NMS of one group of n candidates in group order (start, end, score: read only),
// producing its selections one at a time (next()). Works in caller-owned arrays: heap and
// applied of n entries, sel_start and sel_end of `capacity` (the most selections asked for;
// p.max_per_group is not used). Requires lazy_applies(score, n, p).
template <typename T>
class LazyGroup {
 public:
  LazyGroup(const T* start, const T* end, const T* score, int64_t n, const Params<T>& p,
            HeapEntry<T>* heap, int32_t* applied, T* sel_start, T* sel_end, int64_t capacity)
      : start_(start), end_(end), p_(p), heap_(heap), applied_(applied), sel_start_(sel_start),
        sel_end_(sel_end), capacity_(capacity),
        // A segment that does not overlap the selected one has IoU 0; skipping it is exact
        // when the decay at IoU 0 is exactly 1 (every method, except "hard" with
        // iou_threshold 0).
        skip_disjoint_(decay_weight(p, T(0)) == T(1)) {
    for (int64_t i = 0; i < n; ++i) {
      if (score[i] >= p.min_score) {
        heap_[size_++] = {score[i], static_cast<int32_t>(i)};
        applied_[i] = 0;
      }
    }
    for (int64_t i = size_ / 2 - 1; i >= 0; --i) sift_down(heap_, size_, i);
  }

  // The next selection: its position in the group and its score. False when no candidate
  // is left or `capacity` selections were made.
  bool next(int32_t& idx, T& score) {
    while (size_ > 0 && kept_ < capacity_) {
      auto& top = heap_[0];
      const int32_t j = top.idx;
      if (applied_[j] == kept_) {  // current: the best candidate
        idx = j;
        score = top.key;
        sel_start_[kept_] = start_[j];
        sel_end_[kept_] = end_[j];
        ++kept_;
        heap_[0] = heap_[--size_];
        sift_down(heap_, size_, 0);
        return true;
      }
      if (bring_up_to_date(top)) {
        heap_[0] = heap_[--size_];
      }
      sift_down(heap_, size_, 0);
    }
    return false;
  }

 private:
  // Applies to the entry the decays of the selections made since its key was computed, in
  // selection order; true when its score fell under min_score (it is dropped).
  bool bring_up_to_date(HeapEntry<T>& e) {
    const int32_t j = e.idx;
    const T s0 = start_[j];
    const T e0 = end_[j];
    T s = e.key;
    for (int32_t k = applied_[j]; k < kept_; ++k) {
      if (skip_disjoint_ && (sel_end_[k] <= s0 || e0 <= sel_start_[k])) continue;
      s *= decay_weight(p_, segment_iou(sel_start_[k], sel_end_[k], s0, e0));
      if (s < p_.min_score) return true;
    }
    applied_[j] = kept_;
    e.key = s;
    return false;
  }

  const T* start_;
  const T* end_;
  Params<T> p_;
  HeapEntry<T>* heap_;
  int32_t* applied_;
  T* sel_start_;
  T* sel_end_;
  int64_t capacity_;
  bool skip_disjoint_;
  int64_t size_ = 0;
  int32_t kept_ = 0;
};

// Work arrays of one thread, reused across groups.
template <typename T>
struct LazyWorkspace {
  std::vector<HeapEntry<T>> heap;
  std::vector<int32_t> applied;
  std::vector<T> sel_start, sel_end;

  void reserve(int64_t n) {
    heap.resize(n);
    applied.resize(n);
    sel_start.resize(n);
    sel_end.resize(n);
  }
};

// Copies candidates order[begin], ..., order[begin + size - 1] of the (N, 2) segments and
// (N,) scores into the work arrays start, end and score (resized to size).
template <typename T>
void load_candidates(const T* segments, const T* scores, const int64_t* order, int64_t begin,
                     int64_t size, std::vector<T>& start, std::vector<T>& end,
                     std::vector<T>& score) {
  start.resize(size);
  end.resize(size);
  score.resize(size);
  for (int64_t i = 0; i < size; ++i) {
    const int64_t c = order[begin + i];
    start[i] = segments[2 * c];
    end[i] = segments[2 * c + 1];
    score[i] = scores[c];
  }
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
  ws.reserve(n);
  LazyGroup<T> group(start, end, score, n, p, ws.heap.data(), ws.applied.data(),
                     ws.sel_start.data(), ws.sel_end.data(), limit);
  int64_t kept = 0;
  int32_t idx;
  T s;
  while (group.next(idx, s)) {
    out_pos[kept] = pos_base + idx;
    out_score[kept] = s;
    ++kept;
  }
  return kept;
}

}  // namespace soft_nms
}  // namespace pytal
