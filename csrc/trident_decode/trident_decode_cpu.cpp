// CPU kernels of trident_decode: the functions of trident_decode.h in at::parallel_for
// loops. The forward and the index form (both directions) are the CUDA kernels' per-element
// or per-group functions; the dense backward uses the scatter form (one exp per window bin
// instead of the gather form's two), since a CPU task can own whole gradient rows.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "trident_decode/trident_decode.h"
#include "trident_decode/trident_decode_host.h"

namespace pytal {
namespace trident_decode {
namespace {

// Elements per parallel_for task: each costs O(K) (forward) or O(K) / O(Cb) (backward).
constexpr int64_t kGrain = 2048;

std::tuple<at::Tensor, at::Tensor> forward_cpu(const at::Tensor& start_logits,
                                               const at::Tensor& end_logits,
                                               const at::Tensor& offset_logits,
                                               bool save_stats) {
  const Shape s = check_inputs(start_logits, end_logits, offset_logits);
  auto [out, stats] = allocate_forward(start_logits, s, save_stats);
  if (out.numel() == 0) return {out, stats};
  const auto S = start_logits.contiguous();
  const auto E = end_logits.contiguous();
  const auto O = offset_logits.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, S.scalar_type(), "trident_decode",
                                  [&] {
    using Acc = acc_t<scalar_t>;
    const scalar_t* sp = S.data_ptr<scalar_t>();
    const scalar_t* ep = E.data_ptr<scalar_t>();
    const scalar_t* op = O.data_ptr<scalar_t>();
    scalar_t* outp = out.data_ptr<scalar_t>();
    Acc* statp = save_stats ? stats.data_ptr<Acc>() : nullptr;
    // Positions (b, t) in parallel, classes innermost: out and stats are written
    // contiguously, and the Cb logit rows a position reads stay in cache for the next one.
    const int64_t grain = std::max<int64_t>(1, kGrain / s.classes);
    at::parallel_for(0, s.batch * s.length, grain, [&](int64_t lo, int64_t hi) {
      for (int64_t bt = lo; bt < hi; ++bt) {
        const int64_t b = bt / s.length, t = bt % s.length;
        for (int64_t c = 0; c < s.classes; ++c) forward_at<Acc>(sp, ep, op, s, b, t, c, outp, statp);
      }
    });
  });
  return {out, stats};
}

// The backward in one pass over (b, t, c, side, bin), one exp each: tasks own groups of
// classes of one batch item, so they scatter into their own gradient rows of start/end
// logits; the offset gradient, summed over classes, goes to a buffer per class group,
// reduced at the end in a fixed order. Extra memory: min(Cb, threads) * B*T*2*K values.
template <typename scalar_t>
void backward_cpu_kernel(const at::Tensor& G, const at::Tensor& S, const at::Tensor& E,
                         const at::Tensor& O, const at::Tensor& stats, const Shape& s,
                         at::Tensor& grad_start, at::Tensor& grad_end, at::Tensor& grad_offset) {
  using Acc = acc_t<scalar_t>;
  const int64_t groups = std::min<int64_t>(s.classes, at::get_num_threads());
  const int64_t per_offset = s.length * 2 * s.bins;  // offset values of one batch item
  auto partial = at::zeros({groups, s.batch, per_offset}, stats.options());
  const scalar_t* gp = G.data_ptr<scalar_t>();
  const scalar_t* sp = S.data_ptr<scalar_t>();
  const scalar_t* ep = E.data_ptr<scalar_t>();
  const scalar_t* op = O.data_ptr<scalar_t>();
  const Acc* statp = stats.data_ptr<Acc>();
  Acc* partp = partial.data_ptr<Acc>();
  scalar_t* grad_rows[2] = {grad_start.data_ptr<scalar_t>(), grad_end.data_ptr<scalar_t>()};
  const scalar_t* rows[2] = {sp, ep};

  at::parallel_for(0, s.batch * groups, 1, [&](int64_t lo, int64_t hi) {
    std::vector<Acc> grad_row(s.length);
    for (int64_t task = lo; task < hi; ++task) {
      const int64_t b = task / groups, g = task % groups;
      Acc* offset_acc = partp + (g * s.batch + b) * per_offset;
      for (int64_t c = g * s.classes / groups; c < (g + 1) * s.classes / groups; ++c) {
        for (int side = 0; side < 2; ++side) {
          std::fill(grad_row.begin(), grad_row.end(), Acc(0));
          const scalar_t* row = boundary_row(rows[side], s, b, c);
          for (int64_t t = 0; t < s.length; ++t) {
            const int64_t at = btc_index(s, b, t, c) * 2 + side;
            scatter_window_grad<Acc>(row, offset_row(op, s, b, t, side), side, t, s,
                                     saved_at(statp, at), to_acc<Acc>(gp[at]),
                                     grad_row.data(), offset_acc + (t * 2 + side) * s.bins);
          }
          scalar_t* out_row = grad_rows[side] + (b * s.classes + c) * s.length;
          for (int64_t p = 0; p < s.length; ++p) out_row[p] = from_acc<scalar_t>(grad_row[p]);
        }
      }
    }
  });
  scalar_t* gop = grad_offset.data_ptr<scalar_t>();
  const int64_t total = s.batch * per_offset;
  at::parallel_for(0, total, kGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t n = lo; n < hi; ++n) {
      Acc sum = 0;
      for (int64_t g = 0; g < groups; ++g) sum += partp[g * total + n];
      gop[n] = from_acc<scalar_t>(sum);
    }
  });
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> backward_cpu(const at::Tensor& grad_out,
                                                            const at::Tensor& start_logits,
                                                            const at::Tensor& end_logits,
                                                            const at::Tensor& offset_logits,
                                                            const at::Tensor& stats) {
  const Shape s =
      check_backward_inputs(grad_out, start_logits, end_logits, offset_logits, stats);
  auto grad_start = at::empty_like(start_logits, at::MemoryFormat::Contiguous);
  auto grad_end = at::empty_like(end_logits, at::MemoryFormat::Contiguous);
  auto grad_offset = at::zeros_like(offset_logits, at::MemoryFormat::Contiguous);
  if (grad_out.numel() == 0) return {grad_start, grad_end, grad_offset};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, start_logits.scalar_type(),
                                  "trident_decode_backward", [&] {
    backward_cpu_kernel<scalar_t>(grad_out.contiguous(), start_logits.contiguous(),
                                  end_logits.contiguous(), offset_logits.contiguous(),
                                  stats.contiguous(), s, grad_start, grad_end, grad_offset);
  });
  return {grad_start, grad_end, grad_offset};
}

std::tuple<at::Tensor, at::Tensor> index_cpu(const at::Tensor& start_logits,
                                             const at::Tensor& end_logits,
                                             const at::Tensor& offset_logits,
                                             const at::Tensor& batch, const at::Tensor& cls,
                                             const at::Tensor& pos, bool save_stats) {
  const Shape s = check_inputs(start_logits, end_logits, offset_logits);
  check_index(s, start_logits, batch, cls, pos);
  const int64_t n = batch.size(0);
  auto [out, stats] = allocate_index_forward(start_logits, n, save_stats);
  if (n == 0) return {out, stats};
  const auto S = start_logits.contiguous();
  const auto E = end_logits.contiguous();
  const auto O = offset_logits.contiguous();
  const auto bi = batch.contiguous(), ci = cls.contiguous(), ti = pos.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, S.scalar_type(),
                                  "trident_decode_index", [&] {
    using Acc = acc_t<scalar_t>;
    const scalar_t* sp = S.data_ptr<scalar_t>();
    const scalar_t* ep = E.data_ptr<scalar_t>();
    const scalar_t* op = O.data_ptr<scalar_t>();
    const int64_t* bp = bi.data_ptr<int64_t>();
    const int64_t* cp = ci.data_ptr<int64_t>();
    const int64_t* tp = ti.data_ptr<int64_t>();
    scalar_t* outp = out.data_ptr<scalar_t>();
    Acc* statp = save_stats ? stats.data_ptr<Acc>() : nullptr;
    at::parallel_for(0, n, kGrain, [&](int64_t lo, int64_t hi) {
      for (int64_t k = lo; k < hi; ++k) {
        index_at<Acc>(sp, ep, op, s, bp[k], cp[k], tp[k], k, outp, statp);
      }
    });
  });
  return {out, stats};
}

// The index form's backward in three passes, each parallel over things that only it
// writes: per-triple logit gradients, then each boundary row (b, c) adds its triples'
// windows, then each offset row (b, t) sums its triples' gradients.
template <typename scalar_t>
void index_backward_cpu_kernel(const at::Tensor& G, const at::Tensor& S, const at::Tensor& E,
                               const at::Tensor& O, const at::Tensor& batch,
                               const at::Tensor& cls, const at::Tensor& pos,
                               const at::Tensor& stats, const Shape& s, IndexBackward& work) {
  using Acc = acc_t<scalar_t>;
  const int64_t n = batch.size(0);
  const scalar_t* gp = G.data_ptr<scalar_t>();
  const scalar_t* op = O.data_ptr<scalar_t>();
  const scalar_t* rows[2] = {S.data_ptr<scalar_t>(), E.data_ptr<scalar_t>()};
  const int64_t* bp = batch.data_ptr<int64_t>();
  const int64_t* cp = cls.data_ptr<int64_t>();
  const int64_t* tp = pos.data_ptr<int64_t>();
  const Acc* statp = stats.data_ptr<Acc>();
  Acc* lg = work.logit_grads.data_ptr<Acc>();
  at::parallel_for(0, n * 2, kGrain / s.bins + 1, [&](int64_t lo, int64_t hi) {
    for (int64_t ns = lo; ns < hi; ++ns) {
      const int64_t k = ns / 2;
      const int side = static_cast<int>(ns % 2);
      index_logit_grads_at<Acc>(gp, rows[side], op, statp, s, bp[k], cp[k], tp[k], k, side, lg);
    }
  });

  const int64_t* row_order = work.rows.order.data_ptr<int64_t>();
  const int64_t* row_starts = work.rows.starts.data_ptr<int64_t>();
  Acc* grad_rows[2] = {work.grad_start.data_ptr<Acc>(), work.grad_end.data_ptr<Acc>()};
  at::parallel_for(0, work.rows.count() * 2, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t gs = lo; gs < hi; ++gs) {
      const int64_t g = gs / 2;
      const int side = static_cast<int>(gs % 2);
      const int64_t first = row_order[row_starts[g]];
      Acc* grad_row = grad_rows[side] + (bp[first] * s.classes + cp[first]) * s.length;
      index_boundary_grad_group<Acc>(lg, row_order, tp, row_starts[g], row_starts[g + 1], side,
                                     s, grad_row);
    }
  });

  const int64_t* pos_order = work.positions.order.data_ptr<int64_t>();
  const int64_t* pos_starts = work.positions.starts.data_ptr<int64_t>();
  scalar_t* gop = work.grad_offset.data_ptr<scalar_t>();
  at::parallel_for(0, work.positions.count(), kGrain / s.bins + 1, [&](int64_t lo, int64_t hi) {
    for (int64_t g = lo; g < hi; ++g) {
      const int64_t first = pos_order[pos_starts[g]];
      for (int side = 0; side < 2; ++side) {
        scalar_t* grad = gop + ((bp[first] * s.length + tp[first]) * 2 + side) * s.bins;
        for (int64_t i = 0; i < s.bins; ++i) {
          grad[i] = from_acc<scalar_t>(index_offset_grad_group<Acc>(
              lg, pos_order, pos_starts[g], pos_starts[g + 1], side, i, s.bins));
        }
      }
    }
  });
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> index_backward_cpu(
    const at::Tensor& grad_out, const at::Tensor& start_logits, const at::Tensor& end_logits,
    const at::Tensor& offset_logits, const at::Tensor& batch, const at::Tensor& cls,
    const at::Tensor& pos, const at::Tensor& stats) {
  const Shape s = check_index_backward_inputs(grad_out, start_logits, end_logits, offset_logits,
                                              batch, cls, pos, stats);
  const auto bi = batch.contiguous(), ci = cls.contiguous(), ti = pos.contiguous();
  IndexBackward work = prepare_index_backward(s, start_logits, offset_logits, bi, ci, ti);
  if (bi.size(0) > 0) {
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, start_logits.scalar_type(),
                                    "trident_decode_index_backward", [&] {
      index_backward_cpu_kernel<scalar_t>(grad_out.contiguous(), start_logits.contiguous(),
                                          end_logits.contiguous(), offset_logits.contiguous(),
                                          bi, ci, ti, stats.contiguous(), s, work);
    });
  }
  return finish_index_backward(work, start_logits.scalar_type());
}

}  // namespace

TORCH_LIBRARY_IMPL(pytal, CPU, m) {
  m.impl("trident_decode", &forward_cpu);
  m.impl("trident_decode_backward", &backward_cpu);
  m.impl("trident_decode_index", &index_cpu);
  m.impl("trident_decode_index_backward", &index_backward_cpu);
}

}  // namespace trident_decode
}  // namespace pytal
