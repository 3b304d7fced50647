// metrics::LatencyHistogram, the load generators' percentiles: exact below 128 ns, within the
// 0.8% bucket width above, each reported by its bucket's upper bound (never below the value).
#include "metrics/latency_histogram.hpp"

#include <gtest/gtest.h>

namespace {

using tether::metrics::LatencyHistogram;

TEST(LatencyHistogram, EmptyIsZero) { EXPECT_EQ(LatencyHistogram().percentile_us(99), 0.0); }

TEST(LatencyHistogram, PercentilesByRankWithinABucketWidth) {
  LatencyHistogram h;
  for (uint64_t us = 1; us <= 1000; ++us) h.add(us * 1000);  // 1..1000 µs, one each
  EXPECT_EQ(h.count(), 1000u);
  for (double p : {1.0, 50.0, 90.0, 99.0, 99.9, 100.0}) {
    const double want = p * 10;  // the rank-th smallest value, in µs
    const double got = h.percentile_us(p);
    EXPECT_GE(got, want) << p;          // an upper bound...
    EXPECT_LE(got, want * 1.008) << p;  // ...within one sub-bucket (1/128)
  }
}

TEST(LatencyHistogram, SmallValuesAreExact) {
  LatencyHistogram h;
  h.add(127);
  EXPECT_DOUBLE_EQ(h.percentile_us(50), 0.127);
}

}  // namespace
