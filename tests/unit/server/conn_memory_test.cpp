// The compact per-connection pieces: the traffic counters in 48 bits (saturating, never
// wrapping) and the connection object's size (the idle-connection memory budget,
// docs/bench.md). The peer's binary address is tested with the socket helpers (unit_loop).
#include <gtest/gtest.h>

#include <cstdint>

#include "server/server_conn.hpp"
#include "stream/ws_stream.hpp"

namespace {

using tether::detail::TrafficCounters;

TEST(TrafficCounters, CountEachKindApartAndSaturateAt48Bits) {
  TrafficCounters t;
  t.add(TrafficCounters::bytes_received, 10);
  t.add(TrafficCounters::bytes_received, 5);
  t.add(TrafficCounters::messages_sent, 1);
  EXPECT_EQ(t.get(TrafficCounters::bytes_received), 15u);
  EXPECT_EQ(t.get(TrafficCounters::bytes_sent), 0u);
  EXPECT_EQ(t.get(TrafficCounters::messages_received), 0u);
  EXPECT_EQ(t.get(TrafficCounters::messages_sent), 1u);
  // Across the 32-bit boundary of the low word.
  t.add(TrafficCounters::bytes_sent, 0xffffffffull);
  t.add(TrafficCounters::bytes_sent, 2);
  EXPECT_EQ(t.get(TrafficCounters::bytes_sent), 0x100000001ull);
  // Near the top: stops at 2^48 - 1 instead of wrapping to a small number.
  t.add(TrafficCounters::messages_received, TrafficCounters::kMax - 3);
  EXPECT_EQ(t.get(TrafficCounters::messages_received), TrafficCounters::kMax - 3);
  t.add(TrafficCounters::messages_received, 10);
  EXPECT_EQ(t.get(TrafficCounters::messages_received), TrafficCounters::kMax);
  t.add(TrafficCounters::messages_received, UINT64_MAX);
  EXPECT_EQ(t.get(TrafficCounters::messages_received), TrafficCounters::kMax);
  EXPECT_EQ(t.get(TrafficCounters::bytes_received), 15u);  // neighbours untouched
}

// The idle-connection budget (issue 8: <= 300 bytes of RSS per idle connection, measured by
// bench/idle.sh): the object is most of it. A field added here shows up in that figure; this
// keeps it from growing unnoticed.
TEST(ServerConnSize, StaysWithinTheIdleBudget) {
  EXPECT_LE(sizeof(tether::detail::ServerConn), 264u);
  EXPECT_EQ(sizeof(TrafficCounters), 24u);
}

}  // namespace
