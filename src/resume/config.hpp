// Options of the resume layer (docs/resume.md §4). One Config serves both roles; every limit
// applies per session and per direction.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "loop/clock.hpp"

namespace tether::resume {

using loop::Duration;
using loop::TimePoint;

struct Config {
  // Replay window: sent messages kept until the peer acknowledges them.
  // 10,000 messages: far above what is in flight on a live link (acks come every 50 ms or 64
  // messages), so the bound only bites while the peer is away.
  std::size_t max_messages = 10'000;
  // 16 MiB: the default largest WebSocket message, so one full-size message is always replayable.
  std::size_t max_bytes = 16u << 20;
  // 2 min (`--resume-window`): an unacknowledged message older than this is dropped, and a
  // server session whose connection is gone is forgotten after this long. Covers a phone
  // switching networks or a proxy restart; longer outages start a new session.
  Duration window = std::chrono::minutes(2);

  // Acks: a received message is acknowledged on the next data frame we send, or by a
  // standalone ack after `ack_delay` (50 ms: short next to any reconnect, long enough for a
  // request/response reply to carry it), or at once after `ack_every` (64) unacknowledged
  // messages, so a one-way stream releases the sender's window steadily.
  Duration ack_delay = std::chrono::milliseconds(50);
  uint32_t ack_every = 64;

  // Server only: sessions held at once (attached or not). When full, the detached session that
  // expires soonest is dropped for a new one; if none is detached the hello is refused (1013).
  std::size_t max_sessions = 100'000;
};

}  // namespace tether::resume
