#include "trident_decode/trident_decode_host.h"

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
  TORCH_CHECK(stats.sizes() == at::IntArrayRef({s.batch, s.length, s.classes, 2, 2}),
              "stats must have shape (B, T, Cb, 2, 2) = (", s.batch, ", ", s.length, ", ",
              s.classes, ", 2, 2), got ", shape_of(stats));
  check_dtype(grad_out, start_logits.scalar_type(), "grad_out");
  check_dtype(stats, acc_type(start_logits.scalar_type()), "stats");
  check_same_device(grad_out, start_logits, "grad_out", "start_logits");
  check_same_device(stats, start_logits, "stats", "start_logits");
  return s;
}

namespace {

void check_index_range(const at::Tensor& index, int64_t size, const char* name,
                       const char* what) {
  if (index.numel() == 0) return;
  const bool ok = at::logical_and(index >= 0, index < size).all().item<bool>();
  TORCH_CHECK(ok, name, " must hold values in [0, ", size, ") (", what, ")");
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
  check_index_range(batch, s.batch, "batch", "B");
  check_index_range(cls, s.classes, "cls", "Cb");
  check_index_range(pos, s.length, "pos", "T");
}

at::ScalarType acc_type(at::ScalarType dtype) {
  return dtype == at::kDouble ? at::kDouble : at::kFloat;
}

std::tuple<at::Tensor, at::Tensor> allocate_forward(const at::Tensor& start_logits,
                                                    const Shape& s) {
  auto out = at::empty({s.batch, s.length, s.classes, 2}, start_logits.options());
  auto stats = at::empty({s.batch, s.length, s.classes, 2, 2},
                         start_logits.options().dtype(acc_type(start_logits.scalar_type())));
  return {out, stats};
}

}  // namespace trident_decode
}  // namespace pytal
