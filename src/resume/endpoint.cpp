#include "resume/endpoint.hpp"

#include <algorithm>
#include <cstring>

namespace tether::resume {

namespace {
constexpr std::size_t keep_scratch = 64 * 1024;  // like the connection's reassembly buffer

Received failure(Error e, std::string message) {
  Received r;
  r.kind = Received::Kind::error;
  r.error = e;
  r.message = std::move(message);
  return r;
}
}  // namespace

Endpoint::Endpoint(const Config& config)
    : config_(config), window_(config.max_messages, config.max_bytes, config.window) {}

void Endpoint::send(MessageType type, std::span<const uint8_t> payload, TimePoint now,
                    FrameSink sink) {
  const uint64_t seq = next_seq_++;
  ++stats_.sent;
  window_.push(seq, type, payload, now);
  if (online_) emit_data(seq, type, payload, {}, sink);
}

Received Endpoint::receive(MessageType type, std::span<const uint8_t> bytes, TimePoint now,
                           FrameSink sink) {
  Frame f;
  std::string why;
  if (Error e = parse_frame(type, bytes, f, why); e != Error::none) return failure(e, why);
  Received r;
  switch (f.kind) {
    case FrameKind::hello:
      return failure(Error::unexpected_frame, "hello after the opening exchange");
    case FrameKind::welcome:
      return failure(Error::unexpected_frame, "welcome after the opening exchange");
    case FrameKind::ack:
      apply_ack(f.ack, r);
      return r;
    case FrameKind::ping:
    case FrameKind::pong:
      return control(f, sink);
    case FrameKind::data:
      break;
  }
  if (!apply_ack(f.ack, r)) return r;
  r.seq = f.seq;
  if (f.seq <= highest_received_) {
    // Dropped, but acknowledged again (after ack_delay) so a peer that sent it twice can
    // release its window.
    ++stats_.duplicates;
    r.kind = Received::Kind::duplicate;
    if (ack_due_ == TimePoint::max()) ack_due_ = now + config_.ack_delay;
    return r;
  }
  if (f.seq != highest_received_ + 1)
    return failure(Error::sequence_gap, "sequence gap: got " + std::to_string(f.seq) +
                                            ", expected " + std::to_string(highest_received_ + 1));
  highest_received_ = f.seq;
  ++stats_.delivered;
  r.kind = Received::Kind::deliver;
  r.type = type;
  r.payload = f.payload;
  if (ack_due_ == TimePoint::max()) ack_due_ = now + config_.ack_delay;
  if (online_ && highest_received_ - ack_sent_ >= config_.ack_every) emit_ack(sink);
  return r;
}

Received Endpoint::control(const Frame& f, FrameSink sink) {
  Received r;
  r.payload = f.payload;
  if (f.kind == FrameKind::pong) {
    r.kind = Received::Kind::pong;
    return r;
  }
  r.kind = Received::Kind::ping;
  uint8_t frame[1 + max_ping_token];
  frame[0] = 'Q';
  std::memcpy(frame + 1, f.payload.data(), f.payload.size());
  sink(MessageType::text, std::span<const uint8_t>(frame, 1 + f.payload.size()));
  return r;
}

bool Endpoint::apply_ack(uint64_t ack, Received& r) {
  if (ack > highest_sent()) {
    r = failure(Error::invalid_ack, "ack " + std::to_string(ack) +
                                        " is above the highest sequence number sent (" +
                                        std::to_string(highest_sent()) + ")");
    return false;
  }
  // A lower ack than one already received is ignored: a replayed frame may carry its original.
  if (ack > peer_acked_) {
    peer_acked_ = ack;
    window_.release_through(ack);
  }
  r.kind = Received::Kind::ack;
  return true;
}

TimePoint Endpoint::next_deadline() const {
  return std::min(online_ ? ack_due_ : TimePoint::max(), window_.next_expiry());
}

void Endpoint::on_timer(TimePoint now, FrameSink sink) {
  window_.expire(now);
  if (online_ && ack_due_ <= now) emit_ack(sink);
}

uint64_t Endpoint::replay_after(uint64_t last, FrameSink sink) {
  if (!online_) return 0;
  uint64_t n = 0;
  window_.for_each_after(last, [&](uint64_t seq, MessageType type, std::span<const uint8_t> a,
                                   std::span<const uint8_t> b) {
    emit_data(seq, type, a, b, sink);
    ++n;
  });
  stats_.replayed += n;
  return n;
}

void Endpoint::go_offline() {
  online_ = false;
  ack_due_ = TimePoint::max();
}

uint64_t Endpoint::go_online(uint64_t peer_last, FrameSink sink) {
  if (peer_last > peer_acked_) {
    peer_acked_ = peer_last;
    window_.release_through(peer_last);
  }
  online_ = true;
  ack_sent_ = highest_received_;  // the hello/welcome carried it
  ack_due_ = TimePoint::max();
  return replay_after(peer_last, sink);
}

Error Endpoint::check_peer_last(uint64_t last, std::string& why) const {
  if (last > highest_sent()) {
    why = "last " + std::to_string(last) + " is above the highest sequence number sent (" +
          std::to_string(highest_sent()) + ")";
    return Error::invalid_ack;
  }
  if (last < peer_acked_) {
    why = "last " + std::to_string(last) + " is below the ack already received (" +
          std::to_string(peer_acked_) + ")";
    return Error::invalid_ack;
  }
  return Error::none;
}

void Endpoint::reset() {
  window_.clear();
  next_seq_ = 1;
  highest_received_ = peer_acked_ = ack_sent_ = 0;
  ack_due_ = TimePoint::max();
}

void Endpoint::restore(uint64_t acked, uint64_t highest_sent, uint64_t highest_received) {
  window_.clear();
  next_seq_ = highest_sent + 1;
  peer_acked_ = acked;
  highest_received_ = ack_sent_ = highest_received;
  ack_due_ = TimePoint::max();
}

void Endpoint::restart_keeping_unacked() {
  window_.renumber(1);
  next_seq_ = window_.size() + 1;
  highest_received_ = peer_acked_ = ack_sent_ = 0;
  ack_due_ = TimePoint::max();
}

void Endpoint::emit_data(uint64_t seq, MessageType type, std::span<const uint8_t> a,
                         std::span<const uint8_t> b, FrameSink sink) {
  scratch_.resize(max_data_header + a.size() + b.size());
  std::size_t n = encode_data_header(seq, highest_received_, scratch_.data());
  if (!a.empty()) std::memcpy(scratch_.data() + n, a.data(), a.size());
  n += a.size();
  if (!b.empty()) std::memcpy(scratch_.data() + n, b.data(), b.size());
  n += b.size();
  ack_sent_ = highest_received_;
  ack_due_ = TimePoint::max();
  sink(type, std::span<const uint8_t>(scratch_.data(), n));
  trim_scratch();
}

void Endpoint::emit_ack(FrameSink sink) {
  uint8_t frame[max_ack_frame];
  const std::size_t n = encode_ack(highest_received_, frame);
  ack_sent_ = highest_received_;
  ack_due_ = TimePoint::max();
  ++stats_.acks_sent;
  sink(MessageType::text, std::span<const uint8_t>(frame, n));
}

void Endpoint::trim_scratch() {
  if (scratch_.capacity() > keep_scratch) std::vector<uint8_t>().swap(scratch_);
}

}  // namespace tether::resume
