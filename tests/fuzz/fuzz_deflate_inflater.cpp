// libFuzzer target: arbitrary bytes as permessage-deflate (RFC 7692 §7.2.2) message payloads
// through extensions::PerMessageDeflate, in both context modes.
//
// Input layout:
//   byte 0  options (see kOpt*)
//   byte 1  seed for the chunk sizes
//   byte 2  inflated-size limit: 0 -> 1 MiB, else byte * 97 (up to ~24 KiB: reaches too_big)
//   rest    messages, each a 2-byte little-endian length then that many payload bytes (the last
//           one may be short)
//
// Every message is inflated twice, by two inflaters with the same parameters: once in one call,
// once fed in chunks (payloads arrive in pieces across reads and frames). Both must return the
// same status and bytes, and the limit holds in every call: the output never exceeds limit + 1
// bytes and its buffer never grows past that (a bomb is stopped, not inflated). Each message is
// also compressed and inflated back (with the options' window and context mode), which must
// give the bytes back. A violation aborts (__builtin_trap), which libFuzzer reports as a crash.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <span>
#include <vector>

#include "extensions/permessage_deflate.hpp"
#include "fuzz_check.hpp"

namespace {

using tether::extensions::DeflateParams;
using tether::extensions::InflateStatus;
using tether::extensions::PerMessageDeflate;
using tether::extensions::Side;
using Bytes = std::vector<uint8_t>;

constexpr uint8_t kOptPeerResets = 0x01;  // server_no_context_takeover: shared inflater
constexpr uint8_t kOptOwnResets = 0x02;   // our compressor resets (the round trip's mode)
constexpr uint8_t kOptSplitShift = 2;     // bits 2-4: split pattern
constexpr uint8_t kOptWindowShift = 5;    // bits 5-7: compression window 9 + n % 7

// Chunk sizes from a pattern and a seed; deterministic per input.
class Splitter {
 public:
  Splitter(uint8_t mode, uint8_t seed) : mode_(mode & 7), seed_(seed) {
    state_ = static_cast<uint16_t>((seed << 8) | 0xA7) | 1u;
  }
  std::size_t next(std::size_t remaining) {
    std::size_t n = remaining;
    switch (mode_) {
      case 0:
        n = 1;
        break;
      case 1:
        n = 2 + seed_ % 5;
        break;
      case 2:
        n = 1 + seed_;
        break;
      case 3:
        n = 4093;  // around the 16 KiB inflate chunk after a few calls
        break;
      default: {
        xorshift16(state_);
        const std::size_t bound = mode_ == 4 ? 4 : mode_ == 5 ? 32 : 1 + seed_ * 4u;
        n = 1 + state_ % bound;
        break;
      }
    }
    return n < remaining ? n : remaining;
  }

 private:
  uint8_t mode_;
  uint8_t seed_;
  uint16_t state_;
};

void check_bounds(const Bytes& out, std::size_t limit, InflateStatus st) {
  FUZZ_CHECK(out.size() <= limit + 1);
  // The buffer starts empty and is only ever grown up to limit + 1 bytes of capacity.
  FUZZ_CHECK(out.capacity() <= limit + 1);
  if (st == InflateStatus::too_big) FUZZ_CHECK(out.size() == limit + 1);
  if (st == InflateStatus::ok) FUZZ_CHECK(out.size() <= limit);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  const uint8_t opts = data[0];
  const uint8_t seed = data[1];
  const std::size_t limit = data[2] == 0 ? std::size_t{1} << 20 : std::size_t{data[2]} * 97;
  const bool peer_resets = (opts & kOptPeerResets) != 0;
  const bool own_resets = (opts & kOptOwnResets) != 0;
  const int window = 9 + (opts >> kOptWindowShift) % 7;

  // We are the client; the server's compressor resets iff peer_resets.
  const DeflateParams params{peer_resets, own_resets, 15, window};
  PerMessageDeflate whole(params, Side::client);
  PerMessageDeflate chunked(params, Side::client);
  Splitter split(static_cast<uint8_t>(opts >> kOptSplitShift), seed);
  // Round trip: our client compresses, a server with the same agreement inflates.
  PerMessageDeflate sender(params, Side::client);
  PerMessageDeflate receiver(params, Side::server);

  Bytes a, b, wire, back;
  std::size_t pos = 3;
  while (pos < size) {
    std::size_t len = data[pos];
    if (pos + 1 < size) len |= std::size_t{data[pos + 1]} << 8;
    pos += 2;
    if (pos > size) pos = size;
    if (len > size - pos) len = size - pos;
    const std::span<const uint8_t> payload(data + pos, len);
    pos += len;

    // One call.
    a.clear();
    InflateStatus sa = whole.inflate(payload, a, limit);
    check_bounds(a, limit, sa);
    if (sa == InflateStatus::ok) {
      sa = whole.finish_message(a, limit);
      check_bounds(a, limit, sa);
    }
    // In pieces.
    b.clear();
    InflateStatus sb = InflateStatus::ok;
    for (std::size_t off = 0; off < payload.size() && sb == InflateStatus::ok;) {
      const std::size_t n = split.next(payload.size() - off);
      sb = chunked.inflate(payload.subspan(off, n), b, limit);
      check_bounds(b, limit, sb);
      off += n;
    }
    if (sb == InflateStatus::ok) {
      sb = chunked.finish_message(b, limit);
      check_bounds(b, limit, sb);
    }
    FUZZ_CHECK(sa != InflateStatus::no_memory && sb != InflateStatus::no_memory);
    // Same status and bytes; a failed message resets both, so kept contexts stay in step.
    FUZZ_CHECK(sa == sb);
    FUZZ_CHECK(a == b);

    // Compress the payload bytes as a message and inflate them back.
    wire.clear();
    back.clear();
    FUZZ_CHECK(sender.compress(payload, wire));
    FUZZ_CHECK(receiver.inflate(wire, back, payload.size()) == InflateStatus::ok);
    FUZZ_CHECK(receiver.finish_message(back, payload.size()) == InflateStatus::ok);
    FUZZ_CHECK(back.size() == payload.size());
    FUZZ_CHECK(std::equal(back.begin(), back.end(), payload.begin()));
  }
  // Bounded zlib state: shared streams per thread, two kept contexts per instance at most.
  const auto live = tether::extensions::live_zlib_streams();
  FUZZ_CHECK(live.inflaters <= 16 + 4);
  FUZZ_CHECK(live.deflaters <= 63 + 1);
  return 0;
}
