#include "trident_decode/trident_decode_host.h"

#include <algorithm>

#include "common/checks.h"

namespace pytal {
namespace trident_decode {

Shape check_inputs(const at::Tensor& start_logits, const at::Tensor& end_logits,
                   const at::Tensor& offset_logits) {
  check_dim(start_logits, 3, "start_logits", "(B, Cb, T)");
  check_dim(end_logits, 3, "end_logits", "(B, Cb, T)");
  check_dim(offset_logits, 4, "offset_logits", "(B, T, 2, K)");
  TORCH_CHECK(end_logits.sizes() == start_logits.sizes(),
              "end_logits must have the shape of start_logits ", shape_of(start_logits),
              ", got ", shape_of(end_logits));
  const Shape s{start_logits.size(0), start_logits.size(1), start_logits.size(2),
                offset_logits.size(3)};
  TORCH_CHECK(offset_logits.size(0) == s.batch && offset_logits.size(1) == s.length &&
                  offset_logits.size(2) == 2,
              "offset_logits must have shape (B, T, 2, K) = (", s.batch, ", ", s.length,
              ", 2, K), got ", shape_of(offset_logits));
  TORCH_CHECK(s.bins >= 1, "offset_logits must have K = num_bins + 1 >= 1 bins, got shape ",
              shape_of(offset_logits));
  check_floating(start_logits, "start_logits", /*allow_half=*/true);
  TORCH_CHECK(end_logits.scalar_type() == start_logits.scalar_type(),
              "end_logits must have the dtype of start_logits (", start_logits.scalar_type(),
              "), got ", end_logits.scalar_type());
  TORCH_CHECK(offset_logits.scalar_type() == start_logits.scalar_type(),
              "offset_logits must have the dtype of start_logits (", start_logits.scalar_type(),
              "), got ", offset_logits.scalar_type());
  check_same_device(end_logits, start_logits, "end_logits", "start_logits");
  check_same_device(offset_logits, start_logits, "offset_logits", "start_logits");
  return s;
}

Shape check_backward_inputs(const at::Tensor& grad_out, const at::Tensor& start_logits,
                            const at::Tensor& end_logits, const at::Tensor& offset_logits,
                            const at::Tensor& stats) {
  const Shape s = check_inputs(start_logits, end_logits, offset_logits);
  TORCH_CHECK(grad_out.sizes() == at::IntArrayRef({s.batch, s.length, s.classes, 2}),
              "grad_out must have shape (B, T, Cb, 2) = (", s.batch, ", ", s.length, ", ",
              s.classes, ", 2), got ", shape_of(grad_out));
  TORCH_CHECK(stats.sizes() == at::IntArrayRef({s.batch, s.length, s.classes, 2, kStats}),
              "stats must have shape (B, T, Cb, 2, ", kStats, ") = (", s.batch, ", ", s.length,
              ", ", s.classes, ", 2, ", kStats, "), got ", shape_of(stats));
  check_dtype(grad_out, start_logits.scalar_type(), "grad_out");
  check_dtype(stats, acc_type(start_logits.scalar_type()), "stats");
  check_same_device(grad_out, start_logits, "grad_out", "start_logits");
  check_same_device(stats, start_logits, "stats", "start_logits");
  return s;
}

namespace {

bool all_in_range(const at::Tensor& index, int64_t size) {
  // a plain loop: tensor ops cost more than the index op itself here
  const auto values = index.contiguous();
  const int64_t* p = values.const_data_ptr<int64_t>();
  return std::all_of(p, p + values.numel(), [size](int64_t v) { return v >= 0 && v < size; });
}

// On the CPU a ValueError; on CUDA an asynchronous device assertion (no host synchronisation),
// which fails at the next synchronisation, as out-of-range indices do in PyTorch's own CUDA
// indexing. Queued on the stream before the kernels that read the indices.
void check_index_range(const at::Tensor& index, int64_t size, const char* name,
                       const char* what) {
  if (index.numel() == 0) return;
  if (!index.is_cpu()) {
    at::_assert_async(at::logical_and(index >= 0, index < size).all());
    return;
  }
  TORCH_CHECK_VALUE(all_in_range(index, size), "pytal.ops.trident_decode: ", name,
                    " must hold values in [0, ", size, ") (", what, ")");
}

}  // namespace

void check_index(const Shape& s, const at::Tensor& logits, const at::Tensor& batch,
                 const at::Tensor& cls, const at::Tensor& pos) {
  check_dim(batch, 1, "batch", "(N,)");
  TORCH_CHECK(cls.sizes() == batch.sizes(), "cls must have the shape of batch ",
              shape_of(batch), ", got ", shape_of(cls));
  TORCH_CHECK(pos.sizes() == batch.sizes(), "pos must have the shape of batch ",
              shape_of(batch), ", got ", shape_of(pos));
  check_dtype(batch, at::kLong, "batch");
  check_dtype(cls, at::kLong, "cls");
  check_dtype(pos, at::kLong, "pos");
  check_same_device(batch, logits, "batch", "start_logits");
  check_same_device(cls, logits, "cls", "start_logits");
  check_same_device(pos, logits, "pos", "start_logits");
  check_index_range(batch, s.batch, "index[0] (batch)", "B");
  check_index_range(cls, s.classes, "index[1] (cls)", "Cb");
  check_index_range(pos, s.length, "index[2] (pos)", "T");
}

Shape check_index_backward_inputs(const at::Tensor& grad_out, const at::Tensor& start_logits,
                                  const at::Tensor& end_logits, const at::Tensor& offset_logits,
                                  const at::Tensor& batch, const at::Tensor& cls,
                                  const at::Tensor& pos, const at::Tensor& stats) {
  const Shape s = check_inputs(start_logits, end_logits, offset_logits);
  check_index(s, start_logits, batch, cls, pos);
  const int64_t n = batch.size(0);
  TORCH_CHECK(grad_out.sizes() == at::IntArrayRef({n, 2}), "grad_out must have shape (N, 2) = (",
              n, ", 2), got ", shape_of(grad_out));
  TORCH_CHECK(stats.sizes() == at::IntArrayRef({n, 2, kStats}), "stats must have shape (N, 2, ",
              kStats, ") = (", n, ", 2, ", kStats, "), got ", shape_of(stats));
  check_dtype(grad_out, start_logits.scalar_type(), "grad_out");
  check_dtype(stats, acc_type(start_logits.scalar_type()), "stats");
  check_same_device(grad_out, start_logits, "grad_out", "start_logits");
  check_same_device(stats, start_logits, "stats", "start_logits");
  return s;
}

at::ScalarType acc_type(at::ScalarType dtype) {
  return dtype == at::kDouble ? at::kDouble : at::kFloat;
}

std::tuple<at::Tensor, at::Tensor> allocate_forward(const at::Tensor& start_logits,
                                                    const Shape& s, bool save_stats) {
  auto out = at::empty({s.batch, s.length, s.classes, 2}, start_logits.options());
  const auto stats_options =
      start_logits.options().dtype(acc_type(start_logits.scalar_type()));
  auto stats = save_stats ? at::empty({s.batch, s.length, s.classes, 2, kStats}, stats_options)
                          : at::empty({0}, stats_options);
  return {out, stats};
}

std::tuple<at::Tensor, at::Tensor> allocate_index_forward(const at::Tensor& start_logits,
                                                          int64_t n, bool save_stats) {
  auto out = at::empty({n, 2}, start_logits.options());
  const auto stats_options =
      start_logits.options().dtype(acc_type(start_logits.scalar_type()));
  auto stats =
      save_stats ? at::empty({n, 2, kStats}, stats_options) : at::empty({0}, stats_options);
  return {out, stats};
}

namespace {

// Groups of equal key / divisor, ordered by key (a stable sort: deterministic, duplicates in
// input order). On the CPU exactly the G groups; on CUDA N groups without a host
// synchronisation: the G real ones, then empty ones (start == end == N) that the kernels skip.
TripleGroups group_by(const at::Tensor& key, int64_t divisor) {
  auto [sorted, order] = at::sort(key, /*stable=*/true, /*dim=*/0, /*descending=*/false);
  const auto group = divisor == 1 ? sorted : at::div(sorted, divisor, "floor");
  at::Tensor counts;
  if (group.is_cpu()) {
    counts = std::get<2>(at::unique_consecutive(group, false, true));
  } else {
    const int64_t n = group.size(0);
    auto first = at::ones({n}, group.options().dtype(at::kBool));
    if (n > 1) first.narrow(0, 1, n - 1).copy_(group.diff().ne(0));
    const auto group_of = first.to(at::kLong).cumsum(0) - 1;
    counts = at::zeros({n}, group.options()).scatter_add_(0, group_of, at::ones_like(group_of));
  }
  auto starts = at::zeros({counts.size(0) + 1}, counts.options());
  starts.narrow(0, 1, counts.size(0)).copy_(counts.cumsum(0));
  return {order, starts};
}

}  // namespace

IndexBackward prepare_index_backward(const Shape& s, const at::Tensor& start_logits,
                                     const at::Tensor& offset_logits, const at::Tensor& batch,
                                     const at::Tensor& cls, const at::Tensor& pos) {
  const auto acc_options = start_logits.options().dtype(acc_type(start_logits.scalar_type()));
  IndexBackward work;
  work.logit_grads = at::empty({batch.size(0), 2, s.bins}, acc_options);
  work.grad_start = at::zeros({s.batch, s.classes, s.length}, acc_options);
  work.grad_end = at::zeros({s.batch, s.classes, s.length}, acc_options);
  work.grad_offset = at::zeros_like(offset_logits, at::MemoryFormat::Contiguous);
  // Boundary rows sorted by position: a row's windows are added left to right.
  work.rows = group_by((batch * s.classes + cls) * s.length + pos, s.length);
  work.positions = group_by(batch * s.length + pos, 1);
  return work;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> finish_index_backward(
    const IndexBackward& work, at::ScalarType dtype) {
  return {work.grad_start.to(dtype), work.grad_end.to(dtype), work.grad_offset};
}

}  // namespace trident_decode
}  // namespace pytal
