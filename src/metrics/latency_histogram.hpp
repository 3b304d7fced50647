// Log-linear latency histogram for the load generators (`tether bench`, bench/loadgen): 64
// powers of two x 128 linear sub-buckets, <= 0.8% resolution (fine enough to judge a 5%
// latency target without the bucket edges deciding it), values in ns, percentiles in µs (each
// bucket reported by its upper bound). 64 KiB of counts. Header-only, no dependencies.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace tether::metrics {

class LatencyHistogram {
 public:
  void add(uint64_t ns) {
    ++counts_[index(ns)];
    ++total_;
  }
  uint64_t count() const { return total_; }
  double percentile_us(double p) const {
    if (total_ == 0) return 0;
    const auto rank = static_cast<uint64_t>(std::ceil(p / 100.0 * static_cast<double>(total_)));
    uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank) return static_cast<double>(upper(i)) / 1000.0;
    }
    return 0;
  }

 private:
  static constexpr int kSubBits = 7;
  static constexpr int kSub = 1 << kSubBits;
  static std::size_t index(uint64_t v) {
    if (v < kSub) return v;
    const int msb = 63 - __builtin_clzll(v);
    const int shift = msb - kSubBits;  // keep kSubBits bits below the leading one
    return static_cast<std::size_t>((shift + 1) * kSub + ((v >> shift) & (kSub - 1)));
  }
  static uint64_t upper(std::size_t i) {
    if (i < kSub) return i;
    const int shift = static_cast<int>(i / kSub) - 1;
    const uint64_t sub = i % kSub;
    return ((kSub + sub + 1) << shift) - 1;
  }
  std::vector<uint64_t> counts_ = std::vector<uint64_t>(64 * kSub, 0);
  uint64_t total_ = 0;
};

}  // namespace tether::metrics
