// Bytes waiting to be written to the transport. One contiguous region with a read offset:
// appends go to the back, the transport consumes from the front; memory is reused across
// messages (no allocation per message in steady state) and trimmed when it grew large. With a
// pool (the loop's), the memory itself goes back to the pool whenever the queue drains, so an
// idle connection holds none.
//
// Priority: a ping or pong must not wait behind megabytes of queued data, or a connection under
// backpressure would be declared dead (RFC 6455 §5.4 lets control frames interleave). So the
// buffer can insert a frame at the first frame boundary at or after the read offset. It finds
// boundaries by walking the frame headers already in the buffer from one remembered frame start,
// so normal appends cost nothing extra.
#pragma once
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <utility>
#include <vector>

#include "codec/frame.hpp"
#include "loop/buffer_pool.hpp"

namespace tether::protocol {

class OutBuffer {
 public:
  // `pools` (the loop's, or nullptr) is given to each call that may take or give memory
  // rather than kept: it is the same for every connection of a loop (8 bytes saved on each).
  using Pools = loop::BufferPools;
  OutBuffer() = default;
  OutBuffer(const OutBuffer&) = delete;
  OutBuffer& operator=(const OutBuffer&) = delete;

  const uint8_t* data() const { return q_ ? q_->buf.data() + q_->head : nullptr; }
  std::size_t size() const { return q_ ? q_->buf.size() - q_->head : 0; }
  bool empty() const { return size() == 0; }

  // Returns space for `n` more bytes at the back (valid until the next call).
  uint8_t* extend(Pools* pools, std::size_t n) {
    // Most calls: a queue with room and nothing written from it yet (nothing to compact).
    if (q_ && q_->head == 0)
      if (uint8_t* p = q_->buf.grow_within(n)) return p;
    return extend_slow(pools, n);
  }
  void append(Pools* pools, const void* p, std::size_t n) {
    if (n) std::memcpy(extend(pools, n), p, n);
  }
  // The bytes so far are not frames (an HTTP head): boundaries start after them.
  void mark_boundary(Pools* pools) {
    loop::ByteQueue& q = queue(pools);
    q.boundary = q.buf.size();
  }
  // Inserts a whole frame at the first frame boundary at or after the read offset.
  void insert_priority(Pools* pools, const uint8_t* p, std::size_t n) {
    loop::ByteQueue& q = queue(pools);
    const std::size_t at = first_boundary(q);
    const std::size_t old = q.buf.size();
    q.buf.resize(old + n);
    std::memmove(q.buf.data() + at + n, q.buf.data() + at, old - at);
    std::memcpy(q.buf.data() + at, p, n);
  }
  void consume(Pools* pools, std::size_t n) {
    if (!q_) return;
    q_->head += n;
    if (q_->head != q_->buf.size()) return;
    q_->buf.clear();
    q_->head = 0;
    q_->boundary = 0;
    if (pools) {
      // Drained: the memory and the queue serve other connections until needed again.
      pools->out.give(q_->buf);
      pools->queues.give(q_);
    } else if (q_->buf.capacity() > kKeepCapacity) {
      q_->buf.shrink_to_fit();  // an idle connection should not keep 16 MiB from one big message
    }
  }

 private:
  static constexpr std::size_t kKeepCapacity = 64 * 1024;
  [[gnu::noinline]] uint8_t* extend_slow(Pools* pools, std::size_t n) {
    loop::ByteQueue& q = queue(pools);
    auto& buf = q.buf;
    if (q.head != 0 && q.head == buf.size()) {
      buf.clear();
      q.head = 0;
      q.boundary = 0;
    } else if (q.head > 0 && q.head >= buf.size() / 2) {
      compact(q);
    }
    std::size_t old = buf.size();
    // Small buffers grow to a power of two: a frame a few bytes longer than any before (resume's
    // decimal sequence numbers gaining a digit) then still fits, instead of costing an
    // allocation whenever the longest frame so far is exceeded by a byte.
    if (old + n > buf.capacity() && old + n <= kKeepCapacity) buf.reserve(std::bit_ceil(old + n));
    buf.resize(old + n);
    return buf.data() + old;
  }
  // The queue, taken from the pools when there is none (a pooled buffer starts at 4 KiB, so the
  // ones going round do not each grow by small steps); without pools, made once and kept.
  loop::ByteQueue& queue(Pools* pools) {
    if (!q_) {
      q_ = pools ? pools->queues.take() : std::make_unique<loop::ByteQueue>();
      if (pools) {
        q_->buf = pools->out.take();
        if (q_->buf.capacity() < Pools::kMinOutCapacity) q_->buf.reserve(Pools::kMinOutCapacity);
      }
    }
    return *q_;
  }
  static void compact(loop::ByteQueue& q) {
    first_boundary(q);  // keep the boundary pointing at a frame start that survives the move
    std::memmove(q.buf.data(), q.buf.data() + q.head, q.buf.size() - q.head);
    q.buf.resize(q.buf.size() - q.head);
    q.boundary -= q.head;
    q.head = 0;
  }
  static std::size_t first_boundary(loop::ByteQueue& q) {
    while (q.boundary < q.head) {
      codec::FrameHeader h;
      std::size_t used = 0;
      codec::parse_header({q.buf.data() + q.boundary, q.buf.size() - q.boundary}, h, used);
      q.boundary += used + static_cast<std::size_t>(h.payload_len);
    }
    return q.boundary;
  }
  std::unique_ptr<loop::ByteQueue> q_;  // none while nothing is queued (with pools)
};

}  // namespace tether::protocol
