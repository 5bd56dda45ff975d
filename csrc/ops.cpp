// Every operator schema of pytal, once. Kernels register per device in csrc/<op>/ with
// TORCH_LIBRARY_IMPL; Python wrappers, fake kernels and autograd live in pytal/ops/<op>.py.
#include <torch/library.h>

TORCH_LIBRARY(pytal, m) {
  // Batched Soft-NMS. keep: input indices, groups ascending, each in selection order;
  // new_scores: their decayed scores. See DESIGN.md "soft_nms".
  m.def(
      "soft_nms(Tensor segments, Tensor scores, Tensor? groups, float iou_threshold, "
      "float sigma, float min_score, str method, int max_per_group) -> "
      "(Tensor keep, Tensor new_scores)");

  // Trident relative boundary decoding (TriDet). out (B, T, Cb, 2): expected (left, right)
  // distances; stats (B, T, Cb, 2, 2): per side (mean, log-sum-exp) in the accumulation dtype,
  // all the backward needs, or empty (0,) when save_stats is false (inference).
  // See DESIGN.md "trident_decode".
  m.def(
      "trident_decode(Tensor start_logits, Tensor end_logits, Tensor offset_logits, "
      "bool save_stats=True) -> (Tensor out, Tensor stats)");
  // Gradients of trident_decode's out for its three inputs, from the saved stats.
  m.def(
      "trident_decode_backward(Tensor grad_out, Tensor start_logits, Tensor end_logits, "
      "Tensor offset_logits, Tensor stats) -> (Tensor grad_start, Tensor grad_end, "
      "Tensor grad_offset)");
  // trident_decode of chosen (batch, cls, pos) triples only: (N, 2) (inference after top-k).
  m.def(
      "trident_decode_index(Tensor start_logits, Tensor end_logits, Tensor offset_logits, "
      "Tensor batch, Tensor cls, Tensor pos) -> Tensor");
}
