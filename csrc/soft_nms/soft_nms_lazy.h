// Soft-NMS of one group with lazily applied decays (CPU only).
//
// A candidate's score at any moment is its input score multiplied by the decay of every
// segment selected so far, in selection order, until it first falls under min_score. With
// non-negative scores each decay is in [0, 1], so a score computed before some selections
// is an upper bound of the current one. The candidates sit in a max-heap keyed by such a
// bound (ties: lower position first). A candidate reaching the top is brought up to date by
// applying, in order, the decays of the selections made since its key was computed, and is
// selected only once its key is current and still ranks first. Every other candidate's
// current score is at most its key, which ranks after the top's, so this is the same
// selection, with the same multiplications in the same order, as updating every candidate
// after every selection (soft_nms_sequential), while only the candidates that come near the
// top are ever updated. A selection that does not overlap a candidate leaves its score
// unchanged (IoU 0, decay exactly 1) and is skipped by a branch-free scan before any IoU or
// exp is computed. (Stopping a catch-up as soon as the key falls behind the runner-up saves
// decays but costs more sifts and scans than it saves, measured.)
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <vector>

#include "soft_nms/soft_nms.h"

namespace pytal {
namespace soft_nms {

template <typename T>
struct HeapEntry {
  T key;        // an upper bound of the candidate's current score
  int32_t idx;  // the candidate's position in its group
};

// ranks_before for heap entries, without branches (which child wins is unpredictable).
template <typename T>
inline bool entry_ranks_before(const HeapEntry<T>& a, const HeapEntry<T>& b) {
  return (a.key > b.key) | ((a.key == b.key) & (a.idx < b.idx));
}

// A binary max-heap (children of i: 2i + 1, 2i + 2). A 4-ary heap, half as deep, measured
// slower here.
template <typename T>
inline int64_t best_child(const HeapEntry<T>* heap, int64_t size, int64_t first) {
  if (first + 1 >= size) return first;
  return first + static_cast<int64_t>(entry_ranks_before(heap[first + 1], heap[first]));
}

template <typename T>
inline void sift_down(HeapEntry<T>* heap, int64_t size, int64_t i) {
  const auto item = heap[i];
  while (true) {
    const int64_t first = 2 * i + 1;
    if (first >= size) break;
    const int64_t child = best_child(heap, size, first);
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

// Work arrays of one thread, reused across groups: the candidates of the groups being
// processed, in group order (start, end, len = segment_length, score), and per candidate
// slot the heap, the applied counts, the selections' segments and a scratch list.
template <typename T>
struct LazyWorkspace {
  std::vector<T> start, end, len, score;
  std::vector<HeapEntry<T>> heap;
  std::vector<int32_t> applied;
  std::vector<uint8_t> flags;  // one per selection, and 8 of padding
  std::vector<T> sel_start, sel_end, sel_len;

  void resize(int64_t n) {
    for (auto* v : {&start, &end, &len, &score, &sel_start, &sel_end, &sel_len}) v->resize(n);
    heap.resize(n);
    applied.resize(n);
    flags.resize(n + 8);
  }
};

// Soft-NMS of one group: the n candidates in slots [at, at + n) of a workspace, producing
// the group's selections one at a time (next()), at most `capacity` of them (p.max_per_group
// is not used). The workspace must not be resized while the group is in use. Requires
// lazy_applies(score, n, p).
template <typename T>
class LazyGroup {
 public:
  LazyGroup(LazyWorkspace<T>& ws, int64_t at, int64_t n, const Params<T>& p, int64_t capacity)
      : start_(ws.start.data() + at), end_(ws.end.data() + at), len_(ws.len.data() + at),
        p_(p), heap_(ws.heap.data() + at), applied_(ws.applied.data() + at),
        flags_(ws.flags.data() + at), sel_start_(ws.sel_start.data() + at),
        sel_end_(ws.sel_end.data() + at), sel_len_(ws.sel_len.data() + at),
        capacity_(capacity),
        // A segment that does not overlap the selected one has IoU 0; skipping it is exact
        // when the decay at IoU 0 is exactly 1 (every method, except "hard" with
        // iou_threshold 0).
        skip_disjoint_(decay_weight(p, T(0)) == T(1)) {
    const T* score = ws.score.data() + at;
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
      if (applied_[top.idx] != kept_) {
        const CatchUp state = catch_up(top);
        if (state == CatchUp::kDropped) {
          heap_[0] = heap_[--size_];
          sift_down(heap_, size_, 0);
          continue;
        }
        if (state == CatchUp::kBehind) {
          sift_down(heap_, size_, 0);
          continue;
        }
      }
      // Current, and ranks before every other key.
      const int32_t j = top.idx;
      idx = j;
      score = top.key;
      sel_start_[kept_] = start_[j];
      sel_end_[kept_] = end_[j];
      sel_len_[kept_] = len_[j];
      ++kept_;
      heap_[0] = heap_[--size_];
      sift_down(heap_, size_, 0);
      return true;
    }
    return false;
  }

 private:
  enum class CatchUp { kDropped, kBehind, kFirst };

  // Applies to the top entry, in selection order, the decays of the selections made since
  // its key was computed (the key becomes current). kDropped: the score fell under
  // min_score; kBehind: it now ranks after the runner-up; kFirst: it still ranks first.
  CatchUp catch_up(HeapEntry<T>& e) {
    const int32_t j = e.idx;
    const T s0 = start_[j];
    const T e0 = end_[j];
    const T l0 = len_[j];
    // The selections to apply, in order: those overlapping the candidate, flagged by a
    // branch-free (vectorizable) pass, then visited eight flags at a time.
    const int32_t first = applied_[j];
    const int32_t count = kept_ - first;
    const T* sel_start = sel_start_ + first;
    const T* sel_end = sel_end_ + first;
    if (skip_disjoint_) {
      for (int32_t k = 0; k < count; ++k) {
        flags_[k] = static_cast<uint8_t>((sel_end[k] > s0) & (e0 > sel_start[k]));
      }
    } else {
      std::memset(flags_, 1, count);
    }
    std::memset(flags_ + count, 0, 8);
    T s = e.key;
    for (int32_t w = 0; w < count; w += 8) {
      uint64_t word = flag_word(flags_ + w);
      while (word != 0) {
        const int32_t k = first + w + (std::countr_zero(word) >> 3);
        word &= word - 1;
        s *= decay_weight(p_, segment_iou(sel_start_[k], sel_end_[k], sel_len_[k], s0, e0, l0));
        if (s < p_.min_score) return CatchUp::kDropped;
      }
    }
    applied_[j] = kept_;
    e.key = s;
    if (size_ > 1 && entry_ranks_before(heap_[best_child(heap_, size_, 1)], e)) {
      return CatchUp::kBehind;
    }
    return CatchUp::kFirst;
  }

  // Eight flags (bytes 0 or 1) as a word whose lowest set bit belongs to the first flag set.
  static uint64_t flag_word(const uint8_t* flags) {
    uint64_t word;
    std::memcpy(&word, flags, sizeof(word));
    if constexpr (std::endian::native == std::endian::big) word = byte_reversed(word);
    return word;
  }

  static uint64_t byte_reversed(uint64_t x) {
    uint64_t r = 0;
    for (int b = 0; b < 8; ++b, x >>= 8) r = (r << 8) | (x & 0xff);
    return r;
  }

  const T* start_;
  const T* end_;
  const T* len_;
  Params<T> p_;
  HeapEntry<T>* heap_;
  int32_t* applied_;
  uint8_t* flags_;
  T* sel_start_;
  T* sel_end_;
  T* sel_len_;
  int64_t capacity_;
  bool skip_disjoint_;
  int64_t size_ = 0;
  int32_t kept_ = 0;
};

// Copies candidates order[begin], ..., order[begin + size - 1] (begin, ..., when order is
// null) of the (N, 2) segments and (N,) scores into slots [0, size) of the workspace
// (resized to size), with their lengths.
template <typename T>
void load_candidates(const T* segments, const T* scores, const int64_t* order, int64_t begin,
                     int64_t size, LazyWorkspace<T>& ws) {
  ws.resize(size);
  for (int64_t i = 0; i < size; ++i) {
    const int64_t c = order ? order[begin + i] : begin + i;
    const T s = segments[2 * c];
    const T e = segments[2 * c + 1];
    ws.start[i] = s;
    ws.end[i] = e;
    ws.len[i] = segment_length(s, e);
    ws.score[i] = scores[c];
  }
}

// Soft-NMS of one group whose n candidates are in slots [0, n) of the workspace. Writes the
// selected positions (pos_base + position in the group) and their scores to out_pos /
// out_score in selection order; returns how many were selected. Requires
// lazy_applies(score, n, p).
template <typename T>
int64_t soft_nms_lazy(LazyWorkspace<T>& ws, int64_t n, const Params<T>& p, int64_t pos_base,
                      int64_t* out_pos, T* out_score) {
  const int64_t limit = p.max_per_group < 0 ? n : min_of(n, p.max_per_group);
  LazyGroup<T> group(ws, 0, n, p, limit);
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
