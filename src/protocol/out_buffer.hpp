// Bytes waiting to be written to the transport. One contiguous region with a read offset:
// appends go to the back, the transport consumes from the front; memory is reused across
// messages (no allocation per message in steady state) and trimmed when it grew large.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace tether::protocol {

class OutBuffer {
 public:
  const uint8_t* data() const { return buf_.data() + head_; }
  std::size_t size() const { return buf_.size() - head_; }
  bool empty() const { return size() == 0; }

  // Returns space for `n` more bytes at the back (valid until the next call).
  uint8_t* extend(std::size_t n) {
    if (head_ != 0 && head_ == buf_.size()) {
      buf_.clear();
      head_ = 0;
    } else if (head_ > 0 && head_ >= buf_.size() / 2) {
      compact();
    }
    std::size_t old = buf_.size();
    buf_.resize(old + n);
    return buf_.data() + old;
  }
  void append(const void* p, std::size_t n) {
    if (n) std::memcpy(extend(n), p, n);
  }
  void consume(std::size_t n) {
    head_ += n;
    if (head_ == buf_.size()) {
      buf_.clear();
      head_ = 0;
      // An idle connection should not keep a 16 MiB buffer from one big message.
      if (buf_.capacity() > kKeepCapacity) buf_.shrink_to_fit();
    }
  }

 private:
  static constexpr std::size_t kKeepCapacity = 64 * 1024;
  void compact() {
    std::memmove(buf_.data(), buf_.data() + head_, buf_.size() - head_);
    buf_.resize(buf_.size() - head_);
    head_ = 0;
  }
  std::vector<uint8_t> buf_;
  std::size_t head_ = 0;
};

}  // namespace tether::protocol
