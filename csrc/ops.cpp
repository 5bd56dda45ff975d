// Every operator schema of pytal, once. Kernels register per device in csrc/<op>/ with
// TORCH_LIBRARY_IMPL; Python wrappers, fake kernels and autograd live in pytal/ops/<op>.py.
#include <torch/library.h>

TORCH_LIBRARY(pytal, m) {
  // Batched Soft-NMS. keep: input indices, groups ascending, each in selection order;
  // new_scores: their decayed scores. See docs/ops.md, "soft_nms".
  m.def(
      "soft_nms(Tensor segments, Tensor scores, Tensor? groups, float iou_threshold, "
      "float sigma, float min_score, str method, int max_per_group) -> "
      "(Tensor keep, Tensor new_scores)");
  // soft_nms, then per video its k best selections (score descending; ties: lower group,
  // then selection order); groups numbered in video order, min_score >= 0. keep: videos
  // ascending. See pytal.ops.soft_nms_top_k.
  m.def(
      "soft_nms_top_k(Tensor segments, Tensor scores, Tensor groups, Tensor videos, "
      "float iou_threshold, float sigma, float min_score, str method, int k) -> "
      "(Tensor keep, Tensor new_scores)");

  // Boundary max pooling (AFSD): (B, C, T) features, (B, K, 4) segments -> (B, C, K); channels
  // c < C/2 pool [seg0, seg1], the others [seg2, seg3]. See docs/ops.md, "boundary_pool".
  m.def("boundary_pool(Tensor features, Tensor segments) -> Tensor");
  // Gradient of boundary_pool for features: each output's gradient goes to its first argmax.
  m.def("boundary_pool_backward(Tensor grad_output, Tensor features, Tensor segments) -> Tensor");
  // Pooling of (B, C, T) features over one interval per output, (B, K, 2) -> (B, C, K);
  // mode "max" or "mean".
  m.def("segment_pool(Tensor features, Tensor segments, str mode) -> Tensor");
  // Gradient of segment_pool for features.
  m.def(
      "segment_pool_backward(Tensor grad_output, Tensor features, Tensor segments, str mode) "
      "-> Tensor");

  // Trident relative boundary decoding (TriDet). out (B, T, Cb, 2): expected (left, right)
  // distances; stats (B, T, Cb, 2, 2): per side (mean, log-sum-exp) in the accumulation dtype,
  // all the backward needs, or empty (0,) when save_stats is false (inference).
  // See docs/ops.md, "trident_decode".
  m.def(
      "trident_decode(Tensor start_logits, Tensor end_logits, Tensor offset_logits, "
      "bool save_stats=True) -> (Tensor out, Tensor stats)");
  // Gradients of trident_decode's out for its three inputs, from the saved stats.
  m.def(
      "trident_decode_backward(Tensor grad_out, Tensor start_logits, Tensor end_logits, "
      "Tensor offset_logits, Tensor stats) -> (Tensor grad_start, Tensor grad_end, "
      "Tensor grad_offset)");
  // trident_decode of chosen (batch, cls, pos) triples only: out (N, 2), and stats (N, 2, 2)
  // as the dense op's (empty (0,) without save_stats).
  m.def(
      "trident_decode_index(Tensor start_logits, Tensor end_logits, Tensor offset_logits, "
      "Tensor batch, Tensor cls, Tensor pos, bool save_stats=False) -> (Tensor out, "
      "Tensor stats)");
  // Gradients of trident_decode_index's out for the three logits, from its stats; duplicate
  // triples accumulate. Deterministic (no atomics).
  m.def(
      "trident_decode_index_backward(Tensor grad_out, Tensor start_logits, Tensor end_logits, "
      "Tensor offset_logits, Tensor batch, Tensor cls, Tensor pos, Tensor stats) -> "
      "(Tensor grad_start, Tensor grad_end, Tensor grad_offset)");

  // GMG token mixer (docs/ops.md, "gmg"): out (B, C, T) in u's dtype, and the global branch g
  // (B, C, T) in the compute dtype (float32, float64 for float64 u), saved for backward.
  m.def(
      "gmg(Tensor u, Tensor filter_w1, Tensor filter_b1, Tensor filter_w2, Tensor filter_b2, "
      "Tensor conv_weight, Tensor conv_bias, Tensor instant_weight, Tensor instant_bias, "
      "float lambd, str gating) -> (Tensor out, Tensor global_branch)");
  // Backward of gmg: grad_u in u's dtype, the parameters' gradients in the compute dtype.
  m.def(
      "gmg_backward(Tensor grad_out, Tensor u, Tensor global_branch, Tensor filter_w1, "
      "Tensor filter_b1, Tensor filter_w2, Tensor filter_b2, Tensor conv_weight, "
      "Tensor conv_bias, Tensor instant_weight, Tensor instant_bias, float lambd, "
      "str gating) -> Tensor[]");
}
