// Argument checks shared by every op's host code. Messages name the argument and what was
// expected, so that a user who passes the wrong thing learns what to pass instead.
#pragma once

#include <ATen/ATen.h>

#include <string>

namespace pytal {

inline std::string shape_of(const at::Tensor& t) { return c10::str(t.sizes()); }

// `t` has `dim` dimensions; `what` describes the expected layout, e.g. "(N, 2)".
inline void check_dim(const at::Tensor& t, int64_t dim, const char* name, const char* what) {
  TORCH_CHECK(t.dim() == dim, name, " must have shape ", what, ", got ", shape_of(t));
}

inline void check_size(const at::Tensor& t, int64_t d, int64_t size, const char* name,
                       const char* what) {
  TORCH_CHECK(t.size(d) == size, name, " must have shape ", what, ", got ", shape_of(t));
}

inline void check_same_device(const at::Tensor& t, const at::Tensor& ref, const char* name,
                              const char* ref_name) {
  TORCH_CHECK(t.device() == ref.device(), name, " must be on the same device as ", ref_name,
              " (", ref.device(), "), got ", t.device());
}

inline void check_dtype(const at::Tensor& t, at::ScalarType dtype, const char* name) {
  TORCH_CHECK(t.scalar_type() == dtype, name, " must have dtype ", dtype, ", got ",
              t.scalar_type());
}

inline void check_floating(const at::Tensor& t, const char* name, bool allow_half) {
  const auto s = t.scalar_type();
  const bool ok = s == at::kFloat || s == at::kDouble ||
                  (allow_half && (s == at::kHalf || s == at::kBFloat16));
  TORCH_CHECK(ok, name, " must have dtype ",
              allow_half ? "float16, bfloat16, float32 or float64" : "float32 or float64",
              ", got ", s);
}

// One pass (and, on CUDA, one host synchronisation) per tensor.
inline void check_finite(const at::Tensor& t, const char* name) {
  if (t.numel() == 0) return;
  TORCH_CHECK(at::isfinite(t).all().item<bool>(), name,
              " must be finite, got NaN or infinity");
}

}  // namespace pytal
