// What a model's forward pass costs, learnt from timed passes: seconds ≈ fixed + per_image x
// images, a least-squares line over the recent passes (older ones weigh less). The batcher waits
// for a batch to fill at most the fixed part: waiting longer costs more model time than running
// the inputs in a pass of their own would.
//
// Thread-safety: none; the batcher holds it under its lock.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>

namespace hier::server {

class ForwardCost {
 public:
  // A pass of `images` took `seconds`.
  void Observe(int64_t images, double seconds) {
    const double n = static_cast<double>(images);
    weight_ = kKeep * weight_ + 1;
    sum_n_ = kKeep * sum_n_ + n;
    sum_t_ = kKeep * sum_t_ + seconds;
    sum_nn_ = kKeep * sum_nn_ + n * n;
    sum_nt_ = kKeep * sum_nt_ + n * seconds;
  }

  // The seconds a pass costs whatever its size (at least 0, at most the mean pass); none until
  // passes of at least two sizes were seen.
  std::optional<double> FixedSeconds() const {
    const double spread = weight_ * sum_nn_ - sum_n_ * sum_n_;
    if (weight_ == 0 || spread <= 1e-9 * weight_ * weight_) return std::nullopt;
    const double per_image = (weight_ * sum_nt_ - sum_n_ * sum_t_) / spread;
    const double fixed = (sum_t_ - per_image * sum_n_) / weight_;
    return std::clamp(fixed, 0.0, sum_t_ / weight_);
  }

 private:
  static constexpr double kKeep = 0.98;  // each pass's weight after the next one
  double weight_ = 0, sum_n_ = 0, sum_t_ = 0, sum_nn_ = 0, sum_nt_ = 0;
};

}  // namespace hier::server
