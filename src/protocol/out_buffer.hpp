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
  using Pool = loop::BufferPool<loop::ByteBuffer>;
  void set_pool(Pool* pool) { pool_ = pool; }

  const uint8_t* data() const { return buf_.data() + head_; }
  std::size_t size() const { return buf_.size() - head_; }
  bool empty() const { return size() == 0; }

  // Returns space for `n` more bytes at the back (valid until the next call).
  uint8_t* extend(std::size_t n) {
    if (buf_.capacity() == 0 && pool_) take_from_pool();
    if (head_ != 0 && head_ == buf_.size()) {
      buf_.clear();
      head_ = 0;
      boundary_ = 0;
    } else if (head_ > 0 && head_ >= buf_.size() / 2) {
      compact();
    }
    std::size_t old = buf_.size();
    // Small buffers grow to a power of two: a frame a few bytes longer than any before (resume's
    // decimal sequence numbers gaining a digit) then still fits, instead of costing an
    // allocation whenever the longest frame so far is exceeded by a byte.
    if (old + n > buf_.capacity() && old + n <= kKeepCapacity) buf_.reserve(std::bit_ceil(old + n));
    buf_.resize(old + n);
    return buf_.data() + old;
  }
  void append(const void* p, std::size_t n) {
    if (n) std::memcpy(extend(n), p, n);
  }
  // The bytes so far are not frames (an HTTP head): boundaries start after them.
  void mark_boundary() { boundary_ = buf_.size(); }
  // Inserts a whole frame at the first frame boundary at or after the read offset.
  void insert_priority(const uint8_t* p, std::size_t n) {
    if (buf_.capacity() == 0 && pool_) take_from_pool();
    const std::size_t at = first_boundary();
    const std::size_t old = buf_.size();
    buf_.resize(old + n);
    std::memmove(buf_.data() + at + n, buf_.data() + at, old - at);
    std::memcpy(buf_.data() + at, p, n);
  }
  void consume(std::size_t n) {
    head_ += n;
    if (head_ == buf_.size()) {
      buf_.clear();
      head_ = 0;
      boundary_ = 0;
      if (pool_)
        pool_->give(buf_);  // drained: the memory serves other connections until needed again
      else if (buf_.capacity() > kKeepCapacity)
        buf_.shrink_to_fit();  // an idle connection should not keep 16 MiB from one big message
    }
  }

 private:
  static constexpr std::size_t kKeepCapacity = 64 * 1024;
  // A pooled buffer starts at 4 KiB, so the ones going round do not each grow by small steps.
  void take_from_pool() {
    buf_ = pool_->take();
    if (buf_.capacity() < loop::BufferPools::kMinOutCapacity)
      buf_.reserve(loop::BufferPools::kMinOutCapacity);
  }
  void compact() {
    first_boundary();  // keep boundary_ pointing at a frame start that survives the move
    std::memmove(buf_.data(), buf_.data() + head_, buf_.size() - head_);
    buf_.resize(buf_.size() - head_);
    boundary_ -= head_;
    head_ = 0;
  }
  std::size_t first_boundary() {
    while (boundary_ < head_) {
      codec::FrameHeader h;
      std::size_t used = 0;
      codec::parse_header({buf_.data() + boundary_, buf_.size() - boundary_}, h, used);
      boundary_ += used + static_cast<std::size_t>(h.payload_len);
    }
    return boundary_;
  }
  loop::ByteBuffer buf_;
  Pool* pool_ = nullptr;
  std::size_t head_ = 0;
  std::size_t boundary_ = 0;  // a frame start (or the end of non-frame bytes), walked lazily
};

}  // namespace tether::protocol
