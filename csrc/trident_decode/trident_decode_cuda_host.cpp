// CUDA registration of trident_decode: tensor handling on the host, kernels in
// trident_decode_cuda.cu.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include "common/cuda_pointers.h"
#include "trident_decode/trident_decode_cuda.h"
#include "trident_decode/trident_decode_host.h"

namespace pytal {
namespace trident_decode {
namespace {

cudaStream_t stream_of(const at::Tensor& t) {
  return c10::cuda::getCurrentCUDAStream(t.get_device()).stream();
}

std::tuple<at::Tensor, at::Tensor> forward_cuda(const at::Tensor& start_logits,
                                                const at::Tensor& end_logits,
                                                const at::Tensor& offset_logits,
                                                bool save_stats) {
  const Shape s = check_inputs(start_logits, end_logits, offset_logits);
  const c10::cuda::CUDAGuard guard(start_logits.device());
  auto [out, stats] = allocate_forward(start_logits, s, save_stats);
  if (out.numel() == 0) return {out, stats};
  const auto S = start_logits.contiguous();
  const auto E = end_logits.contiguous();
  const auto O = offset_logits.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, S.scalar_type(),
                                  "trident_decode_cuda", [&] {
    using Acc = acc_t<scalar_t>;
    Acc* statp = save_stats ? stats.data_ptr<Acc>() : nullptr;
    C10_CUDA_CHECK(launch_forward(cuda_ptr<scalar_t>(S), cuda_ptr<scalar_t>(E),
                                  cuda_ptr<scalar_t>(O), s, cuda_mut_ptr<scalar_t>(out), statp,
                                  stream_of(S)));
  });
  return {out, stats};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> backward_cuda(const at::Tensor& grad_out,
                                                             const at::Tensor& start_logits,
                                                             const at::Tensor& end_logits,
                                                             const at::Tensor& offset_logits,
                                                             const at::Tensor& stats) {
  const Shape s =
      check_backward_inputs(grad_out, start_logits, end_logits, offset_logits, stats);
  const c10::cuda::CUDAGuard guard(start_logits.device());
  auto grad_start = at::empty_like(start_logits, at::MemoryFormat::Contiguous);
  auto grad_end = at::empty_like(end_logits, at::MemoryFormat::Contiguous);
  auto grad_offset = at::zeros_like(offset_logits, at::MemoryFormat::Contiguous);
  if (grad_start.numel() == 0) return {grad_start, grad_end, grad_offset};
  const auto G = grad_out.contiguous();
  const auto S = start_logits.contiguous();
  const auto E = end_logits.contiguous();
  const auto O = offset_logits.contiguous();
  const auto st = stats.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, S.scalar_type(),
                                  "trident_decode_backward_cuda", [&] {
    using Acc = acc_t<scalar_t>;
    C10_CUDA_CHECK(launch_backward(cuda_ptr<scalar_t>(G), cuda_ptr<scalar_t>(S),
                                   cuda_ptr<scalar_t>(E), cuda_ptr<scalar_t>(O),
                                   st.data_ptr<Acc>(), s, cuda_mut_ptr<scalar_t>(grad_start),
                                   cuda_mut_ptr<scalar_t>(grad_end),
                                   cuda_mut_ptr<scalar_t>(grad_offset), stream_of(S)));
  });
  return {grad_start, grad_end, grad_offset};
}

std::tuple<at::Tensor, at::Tensor> index_cuda(const at::Tensor& start_logits,
                                              const at::Tensor& end_logits,
                                              const at::Tensor& offset_logits,
                                              const at::Tensor& batch, const at::Tensor& cls,
                                              const at::Tensor& pos, bool save_stats) {
  const Shape s = check_inputs(start_logits, end_logits, offset_logits);
  check_index(s, start_logits, batch, cls, pos);
  const c10::cuda::CUDAGuard guard(start_logits.device());
  const int64_t n = batch.size(0);
  auto [out, stats] = allocate_index_forward(start_logits, n, save_stats);
  if (n == 0) return {out, stats};
  const auto S = start_logits.contiguous();
  const auto E = end_logits.contiguous();
  const auto O = offset_logits.contiguous();
  const auto bi = batch.contiguous(), ci = cls.contiguous(), ti = pos.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, S.scalar_type(),
                                  "trident_decode_index_cuda", [&] {
    using Acc = acc_t<scalar_t>;
    Acc* statp = save_stats ? stats.data_ptr<Acc>() : nullptr;
    C10_CUDA_CHECK(launch_index(cuda_ptr<scalar_t>(S), cuda_ptr<scalar_t>(E),
                                cuda_ptr<scalar_t>(O), s, bi.data_ptr<int64_t>(),
                                ci.data_ptr<int64_t>(), ti.data_ptr<int64_t>(), n,
                                cuda_mut_ptr<scalar_t>(out), statp, stream_of(S)));
  });
  return {out, stats};
}

IndexGroupsView groups_view(const TripleGroups& groups) {
  return {groups.order.data_ptr<int64_t>(), groups.starts.data_ptr<int64_t>(), groups.count()};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> index_backward_cuda(
    const at::Tensor& grad_out, const at::Tensor& start_logits, const at::Tensor& end_logits,
    const at::Tensor& offset_logits, const at::Tensor& batch, const at::Tensor& cls,
    const at::Tensor& pos, const at::Tensor& stats) {
  const Shape s = check_index_backward_inputs(grad_out, start_logits, end_logits, offset_logits,
                                              batch, cls, pos, stats);
  const c10::cuda::CUDAGuard guard(start_logits.device());
  const auto bi = batch.contiguous(), ci = cls.contiguous(), ti = pos.contiguous();
  IndexBackward work = prepare_index_backward(s, start_logits, offset_logits, bi, ci, ti);
  if (bi.size(0) == 0) return finish_index_backward(work, start_logits.scalar_type());
  const auto G = grad_out.contiguous();
  const auto S = start_logits.contiguous();
  const auto E = end_logits.contiguous();
  const auto O = offset_logits.contiguous();
  const auto st = stats.contiguous();
  const IndexTriples triples{bi.data_ptr<int64_t>(), ci.data_ptr<int64_t>(),
                             ti.data_ptr<int64_t>(), bi.size(0)};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, S.scalar_type(),
                                  "trident_decode_index_backward_cuda", [&] {
    using Acc = acc_t<scalar_t>;
    C10_CUDA_CHECK(launch_index_backward(
        cuda_ptr<scalar_t>(G), cuda_ptr<scalar_t>(S), cuda_ptr<scalar_t>(E),
        cuda_ptr<scalar_t>(O), st.data_ptr<Acc>(), s, triples, groups_view(work.rows),
        groups_view(work.positions), work.logit_grads.data_ptr<Acc>(),
        work.grad_start.data_ptr<Acc>(), work.grad_end.data_ptr<Acc>(),
        cuda_mut_ptr<scalar_t>(work.grad_offset), stream_of(S)));
  });
  return finish_index_backward(work, start_logits.scalar_type());
}

}  // namespace

TORCH_LIBRARY_IMPL(pytal, CUDA, m) {
  m.impl("trident_decode", &forward_cuda);
  m.impl("trident_decode_backward", &backward_cuda);
  m.impl("trident_decode_index", &index_cuda);
  m.impl("trident_decode_index_backward", &index_backward_cuda);
}

}  // namespace trident_decode
}  // namespace pytal
