#include "boundary_pool/boundary_pool_host.h"

#include <limits>
#include <string>

#include "common/checks.h"

namespace pytal {
namespace boundary_pool {

Mode parse_mode(std::string_view mode) {
  if (mode == "max") return Mode::kMax;
  if (mode == "mean") return Mode::kMean;
  TORCH_CHECK(false, "mode must be \"max\" or \"mean\", got \"", std::string(mode), "\"");
}

namespace {

// Every [lo, hi] pair of the truncated segments `wide` (B, K, 2 * groups), float64 or int64:
// no NaN, lo <= hi. On the CPU it raises ValueError naming the fault; on CUDA it queues an
// asynchronous device assertion (no host synchronisation): a violation fails at the next
// synchronisation with a device-side assertion, as out-of-range indices do in PyTorch's own
// CUDA indexing.
void check_interval_values(const at::Tensor& wide, const char* op) {
  if (wide.numel() == 0) return;
  const auto pairs = wide.unflatten(2, {-1, 2});  // (B, K, groups, 2)
  const auto valid = (pairs.select(3, 0) <= pairs.select(3, 1)).all();  // false for NaN
  if (!wide.is_cpu()) {
    at::_assert_async(valid);
    return;
  }
  if (valid.item<bool>()) return;
  TORCH_CHECK_VALUE(!(wide.is_floating_point() && wide.isnan().any().item<bool>()), "pytal.ops.",
                    op, ": segments must not contain NaN");
  TORCH_CHECK_VALUE(false, "pytal.ops.", op,
                    ": segments must satisfy lo <= hi after truncation to integers for every "
                    "[lo, hi] pair (columns 0 <= 1",
                    wide.size(2) == 4 ? " and 2 <= 3" : "", ")");
}

}  // namespace

Problem check_inputs(const at::Tensor& features, const at::Tensor& segments, int groups,
                     const char* op) {
  const char* seg_layout = groups == 2 ? "(B, K, 4)" : "(B, K, 2)";
  check_dim(features, 3, "features", "(B, C, T)");
  check_floating(features, "features", /*allow_half=*/true);
  check_dim(segments, 3, "segments", seg_layout);
  check_size(segments, 2, 2 * groups, "segments", seg_layout);
  TORCH_CHECK(segments.size(0) == features.size(0), "segments must have shape ", seg_layout,
              " with B = ", features.size(0), " (the batch of features), got ",
              shape_of(segments));
  TORCH_CHECK(segments.is_floating_point() ||
                  (at::isIntegralType(segments.scalar_type(), /*includeBool=*/false)),
              "segments must have a floating or integer dtype, got ", segments.scalar_type());
  check_same_device(segments, features, "segments", "features");
  Problem p;
  p.batch = features.size(0);
  p.channels = features.size(1);
  p.length = features.size(2);
  p.intervals = segments.size(1);
  p.groups = groups;
  TORCH_CHECK(p.channels % groups == 0, op, ": features must have an even number of channels C ",
              "(c < C/2 pool the start region, the others the end region), got C = ",
              p.channels);
  TORCH_CHECK(p.length < std::numeric_limits<int32_t>::max(), op,
              ": features must have T < 2^31 - 1, got T = ", p.length);
  TORCH_CHECK(p.length >= 1 || p.batch == 0 || p.intervals == 0, op,
              ": features must have T >= 1 to pool over segments, got T = 0");
  return p;
}

void check_grad(const at::Tensor& grad_output, const at::Tensor& features, const Problem& p) {
  TORCH_CHECK(grad_output.dim() == 3 && grad_output.size(0) == p.batch &&
                  grad_output.size(1) == p.channels && grad_output.size(2) == p.intervals,
              "grad_output must have shape (B, C, K) = (", p.batch, ", ", p.channels, ", ",
              p.intervals, "), got ", shape_of(grad_output));
  TORCH_CHECK(grad_output.scalar_type() == features.scalar_type(),
              "grad_output must have the dtype of features (", features.scalar_type(),
              "), got ", grad_output.scalar_type());
  check_same_device(grad_output, features, "grad_output", "features");
}

at::Tensor interval_bounds(const at::Tensor& segments, const Problem& p, const char* op) {
  // In float64 / int64 so that T - 1 is exact; clamping before the int32 cast keeps +-inf and
  // huge values well defined.
  const auto wide = segments.is_floating_point() ? segments.to(at::kDouble).trunc()
                                                 : segments.to(at::kLong);
  check_interval_values(wide, op);
  return wide.clamp(0, p.length - 1)
      .to(at::kInt)
      .reshape({p.batch, p.intervals, p.groups, 2})
      .contiguous();
}

}  // namespace boundary_pool
}  // namespace pytal
