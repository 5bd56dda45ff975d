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
}
