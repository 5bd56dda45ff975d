// CPU kernels of trident_decode: the per-element functions of trident_decode.h in
// at::parallel_for loops. The forward runs over (b, t, c) with c fastest (contiguous
// outputs), boundary gradients over (b, c, t) with t fastest (contiguous gradient rows),
// offset gradients over (b, t, side, i), each reducing over classes.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "trident_decode/trident_decode.h"
#include "trident_decode/trident_decode_host.h"

namespace pytal {
namespace trident_decode {
namespace {

// Elements per parallel_for task: each costs O(K) (forward) or O(K) / O(Cb) (backward).
constexpr int64_t kGrain = 2048;

std::tuple<at::Tensor, at::Tensor> forward_cpu(const at::Tensor& start_logits,
                                               const at::Tensor& end_logits,
                                               const at::Tensor& offset_logits) {
  const Shape s = check_inputs(start_logits, end_logits, offset_logits);
  auto [out, stats] = allocate_forward(start_logits, s);
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
    Acc* statp = stats.data_ptr<Acc>();
    // (b, t, c) with c fastest: out and stats are written contiguously, and the Cb logit
    // rows a position reads stay in cache for the next position.
    at::parallel_for(0, s.batch * s.length * s.classes, kGrain, [&](int64_t lo, int64_t hi) {
      for (int64_t n = lo; n < hi; ++n) {
        const int64_t c = n % s.classes;
        const int64_t bt = n / s.classes;
        forward_at<Acc>(sp, ep, op, s, bt / s.length, bt % s.length, c, outp, statp);
      }
    });
  });
  return {out, stats};
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
  const auto G = grad_out.contiguous();
  const auto S = start_logits.contiguous();
  const auto E = end_logits.contiguous();
  const auto O = offset_logits.contiguous();
  const auto st = stats.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, S.scalar_type(),
                                  "trident_decode_backward", [&] {
    using Acc = acc_t<scalar_t>;
    const scalar_t* gp = G.data_ptr<scalar_t>();
    const scalar_t* sp = S.data_ptr<scalar_t>();
    const scalar_t* ep = E.data_ptr<scalar_t>();
    const scalar_t* op = O.data_ptr<scalar_t>();
    const Acc* statp = st.data_ptr<Acc>();
    scalar_t* gsp = grad_start.data_ptr<scalar_t>();
    scalar_t* gep = grad_end.data_ptr<scalar_t>();
    scalar_t* gop = grad_offset.data_ptr<scalar_t>();
    const int64_t rows = s.batch * s.classes * s.length;
    at::parallel_for(0, rows, kGrain, [&](int64_t lo, int64_t hi) {
      for (int64_t n = lo; n < hi; ++n) {
        const int64_t p = n % s.length;
        const int64_t bc = n / s.length;
        const int64_t b = bc / s.classes, c = bc % s.classes;
        gsp[n] = from_acc<scalar_t>(boundary_grad_at<Acc>(gp, sp, op, statp, s, 0, b, c, p));
        gep[n] = from_acc<scalar_t>(boundary_grad_at<Acc>(gp, ep, op, statp, s, 1, b, c, p));
      }
    });
    const int64_t offsets = s.batch * s.length * 2 * s.bins;
    const int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(1, s.classes));
    at::parallel_for(0, offsets, grain, [&](int64_t lo, int64_t hi) {
      for (int64_t n = lo; n < hi; ++n) {
        const int64_t i = n % s.bins;
        const int side = static_cast<int>((n / s.bins) % 2);
        const int64_t bt = n / (2 * s.bins);
        gop[n] = from_acc<scalar_t>(offset_grad_at<Acc>(gp, sp, ep, op, statp, s, side,
                                                        bt / s.length, bt % s.length, i));
      }
    });
  });
  return {grad_start, grad_end, grad_offset};
}

at::Tensor index_cpu(const at::Tensor& start_logits, const at::Tensor& end_logits,
                     const at::Tensor& offset_logits, const at::Tensor& batch,
                     const at::Tensor& cls, const at::Tensor& pos) {
  const Shape s = check_inputs(start_logits, end_logits, offset_logits);
  check_index(s, start_logits, batch, cls, pos);
  const int64_t n = batch.size(0);
  auto out = at::empty({n, 2}, start_logits.options());
  if (n == 0) return out;
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
    at::parallel_for(0, n, kGrain, [&](int64_t lo, int64_t hi) {
      for (int64_t k = lo; k < hi; ++k) {
        index_at<Acc>(sp, ep, op, s, bp[k], cp[k], tp[k], outp + 2 * k);
      }
    });
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(pytal, CPU, m) {
  m.impl("trident_decode", &forward_cpu);
  m.impl("trident_decode_backward", &backward_cpu);
  m.impl("trident_decode_index", &index_cpu);
}

}  // namespace trident_decode
}  // namespace pytal
