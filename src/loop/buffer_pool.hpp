// Byte buffers shared by the connections of one event loop (uWebSockets' cost model: an idle
// connection holds no buffer). A connection takes a buffer when it has bytes in flight (a send
// queue that did not drain at once, a message arriving in pieces) and gives it back, emptied but
// with its capacity, as soon as the bytes are gone. In steady state the same few buffers go
// round, so there is no allocation per message either.
//
// Bounded: at most `max_buffers` buffers and `max_bytes` of capacity are kept; what does not fit
// is freed. Buffers come back LIFO (the one given last is still in cache). One loop thread only.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <utility>
#include <vector>

#include "codec/read_state.hpp"

namespace tether::loop {

// A send queue's bytes (protocol::OutBuffer): a vector of bytes cut down to what the queue
// needs. Growing it writes nothing (vector<uint8_t>::resize would zero every byte a frame then
// overwrites), and taking room that is already there is a compare and an add, which the
// queue does for every message it frames.
class ByteBuffer {
 public:
  ByteBuffer() = default;
  ByteBuffer(ByteBuffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)),
        size_(std::exchange(o.size_, 0)),
        cap_(std::exchange(o.cap_, 0)) {}
  ByteBuffer& operator=(ByteBuffer&& o) noexcept {
    ByteBuffer(std::move(o)).swap(*this);
    return *this;
  }
  ByteBuffer(const ByteBuffer&) = delete;
  ByteBuffer& operator=(const ByteBuffer&) = delete;
  ~ByteBuffer() { ::operator delete(data_); }

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }
  std::size_t capacity() const { return cap_; }
  bool empty() const { return size_ == 0; }
  void clear() { size_ = 0; }
  void reserve(std::size_t n) {
    if (n > cap_) reallocate(n);
  }
  // New bytes are left as they are (the caller writes them).
  void resize(std::size_t n) {
    if (n > cap_) reallocate(std::max(n, 2 * cap_));
    size_ = n;
  }
  // Room for `n` more bytes at the back, or nullptr when the capacity is short (then resize).
  uint8_t* grow_within(std::size_t n) {
    if (cap_ - size_ < n) return nullptr;
    uint8_t* p = data_ + size_;
    size_ += n;
    return p;
  }
  void shrink_to_fit() {
    if (size_ == 0) {
      ByteBuffer().swap(*this);
    } else if (size_ < cap_) {
      reallocate(size_);
    }
  }
  void swap(ByteBuffer& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    std::swap(cap_, o.cap_);
  }

 private:
  void reallocate(std::size_t cap) {
    auto* p = static_cast<uint8_t*>(::operator new(cap));
    if (size_) std::memcpy(p, data_, size_);
    ::operator delete(data_);
    data_ = p;
    cap_ = cap;
  }
  uint8_t* data_ = nullptr;
  std::size_t size_ = 0, cap_ = 0;
};
// A message being reassembled or inflated (protocol::Connection).
using MessageBuffer = std::vector<uint8_t>;

template <class Buffer>
class BufferPool {
 public:
  explicit BufferPool(std::size_t max_buffers = 256, std::size_t max_bytes = 32u << 20)
      : max_buffers_(max_buffers), max_bytes_(max_bytes) {}
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // An empty buffer, with the capacity it kept when it was given back (none if the pool is empty).
  Buffer take() {
    if (free_.empty()) return Buffer();
    Buffer b = std::move(free_.back());
    free_.pop_back();
    bytes_ -= b.capacity();
    return b;
  }
  // Takes `b` back (leaving it empty, without capacity). Kept if within the bounds, else freed.
  void give(Buffer& b) {
    const std::size_t cap = b.capacity();
    if (cap == 0) return;
    if (free_.size() < max_buffers_ && bytes_ + cap <= max_bytes_) {
      b.clear();
      if (free_.capacity() == 0) free_.reserve(max_buffers_);  // once: giving never allocates
      free_.push_back(std::move(b));
      bytes_ += cap;
    }
    Buffer().swap(b);  // moved-from or kept too large: release whatever is left
  }

  std::size_t size() const { return free_.size(); }
  std::size_t bytes() const { return bytes_; }

 private:
  std::size_t max_buffers_, max_bytes_;
  std::size_t bytes_ = 0;
  std::vector<Buffer> free_;
};

// Objects lent the same way (a reader's state between reads, codec::FrameReadState): at most
// `max_objects` are kept; take() makes a new one when none is free.
template <class T>
class ObjectPool {
 public:
  explicit ObjectPool(std::size_t max_objects = 256) : max_(max_objects) {}
  ObjectPool(const ObjectPool&) = delete;
  ObjectPool& operator=(const ObjectPool&) = delete;
  std::unique_ptr<T> take() {
    if (free_.empty()) return std::make_unique<T>();
    std::unique_ptr<T> p = std::move(free_.back());
    free_.pop_back();
    return p;
  }
  // Takes `p` back (leaving it null); the caller has put it back in its initial state.
  void give(std::unique_ptr<T>& p) {
    if (!p) return;
    if (free_.size() < max_) {
      if (free_.capacity() == 0) free_.reserve(max_);  // once: giving never allocates
      free_.push_back(std::move(p));
    }
    p.reset();
  }
  std::size_t size() const { return free_.size(); }

 private:
  std::size_t max_;
  std::vector<std::unique_ptr<T>> free_;
};

// A send queue's state (protocol::OutBuffer): the bytes and where writing and the frame walk
// stand. Lent to a connection while it has bytes queued.
struct ByteQueue {
  ByteBuffer buf;
  std::size_t head = 0;      // bytes before this are written
  std::size_t boundary = 0;  // a frame start at or before the next one to write (see OutBuffer)
};

// The pools of one loop, which every connection on it uses (ConnectionConfig::pools). A pool
// grows to the most buffers its loop ever had in flight at once, then stops allocating; a few
// are made up front (~20 KiB), so a loop with a handful of busy connections is in its steady
// state from the start.
struct BufferPools {
  static constexpr std::size_t kPrewarm = 4;
  static constexpr std::size_t kMinOutCapacity = 4096;  // a fresh send buffer's first size
  // Bytes of the loop's read buffer lent to a reply (protocol::Connection::frame_in_place): the
  // payload of the message `owner` is delivering, when its frame was the last of the read and
  // the bytes in front of it (the received header, consumed) may take a reply's header. One per
  // loop: only one connection's message callback runs at a time. Null owner: nothing lent.
  struct Loan {
    const void* owner = nullptr;
    const uint8_t* payload = nullptr;
    std::size_t size = 0;
  };
  Loan loan;
  BufferPools() {
    for (std::size_t i = 0; i < kPrewarm; ++i) {
      ByteBuffer b;
      b.reserve(kMinOutCapacity);
      out.give(b);
      auto f = std::make_unique<codec::FrameReadState>();
      frames.give(f);
      auto q = std::make_unique<ByteQueue>();
      queues.give(q);
    }
  }
  BufferPool<ByteBuffer> out;
  ObjectPool<ByteQueue> queues;
  BufferPool<MessageBuffer> message;
  ObjectPool<codec::FrameReadState> frames;
};

}  // namespace tether::loop
