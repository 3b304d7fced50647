// Test helper: a blocking WebSocket peer on a raw loopback socket (hand-made frames in and
// out), with a receive timeout so every wait is bounded. Shared by the server tests.
#pragma once
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <functional>
#include <string>
#include <string_view>

#include "codec/frame.hpp"
#include "codec/mask.hpp"

namespace tether_test {

// A blocking raw TCP peer with a receive timeout, for hand-made frames.
class RawPeer {
 public:
  // `source`: the local address to connect from (another loopback address such as 127.0.0.2
  // looks like a second client host to the server).
  // `connect_now` false: the socket exists (its descriptor is taken) but connect() waits for
  // connect().
  explicit RawPeer(uint16_t port, const char* source = nullptr, bool connect_now = true)
      : port_(port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{5, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (source) {
      sockaddr_in s{};
      s.sin_family = AF_INET;
      inet_pton(AF_INET, source, &s.sin_addr);
      ::bind(fd_, reinterpret_cast<sockaddr*>(&s), sizeof s);
    }
    if (connect_now) connect();
  }
  bool connect() {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port_);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    return connected_;
  }
  ~RawPeer() { ::close(fd_); }
  bool connected() const { return connected_; }
  void write(std::string_view s) {
    ASSERT_EQ(::send(fd_, s.data(), s.size(), MSG_NOSIGNAL), (ssize_t)s.size());
    bytes_sent_ += s.size();
  }
  // Every byte written and read on this socket (metrics tests compare them with the server's).
  std::size_t bytes_sent() const { return bytes_sent_; }
  std::size_t bytes_received() const { return bytes_received_; }
  // Reads until `pred(buffer)` or EOF/timeout. Returns the buffer.
  const std::string& read_until(const std::function<bool(const std::string&)>& pred) {
    char tmp[4096];
    for (int i = 0; i < 10000 && !pred(buf_); ++i) {
      ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
      if (n <= 0) {
        eof_ = true;
        break;
      }
      buf_.append(tmp, static_cast<size_t>(n));
      bytes_received_ += static_cast<size_t>(n);
    }
    return buf_;
  }
  std::string read_http_head() {
    read_until([](const std::string& b) { return b.find("\r\n\r\n") != std::string::npos; });
    auto end = buf_.find("\r\n\r\n");
    std::string head = end == std::string::npos ? buf_ : buf_.substr(0, end + 4);
    buf_.erase(0, head.size());
    return head;
  }
  // Sends an upgrade request (with `extra` header lines, each ending in \r\n) and returns the
  // response head.
  std::string upgrade_response(std::string_view extra = {}) {
    write(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
        std::string(extra) + "\r\n");
    return read_http_head();
  }
  bool upgrade() { return upgrade_response().starts_with("HTTP/1.1 101"); }
  int fd() const { return fd_; }
  // Reads one server frame; returns opcode and payload (servers never mask).
  bool read_frame(uint8_t& opcode, std::string& payload, bool* rsv1 = nullptr) {
    tether::codec::FrameHeader h;
    std::size_t used = 0;
    read_until([&](const std::string& b) {
      auto st = tether::codec::parse_header({reinterpret_cast<const uint8_t*>(b.data()), b.size()},
                                            h, used);
      return st == tether::codec::HeaderStatus::ok && b.size() >= used + h.payload_len;
    });
    auto st = tether::codec::parse_header(
        {reinterpret_cast<const uint8_t*>(buf_.data()), buf_.size()}, h, used);
    if (st != tether::codec::HeaderStatus::ok || buf_.size() < used + h.payload_len) return false;
    opcode = static_cast<uint8_t>(h.opcode);
    if (rsv1) *rsv1 = h.rsv1;
    payload = buf_.substr(used, h.payload_len);
    buf_.erase(0, used + h.payload_len);
    return true;
  }
  bool wait_eof() {
    read_until([](const std::string&) { return false; });
    return eof_;
  }

 private:
  int fd_;
  uint16_t port_;
  bool connected_ = false;
  bool eof_ = false;
  std::string buf_;
  std::size_t bytes_sent_ = 0, bytes_received_ = 0;
};

inline std::string frame(uint8_t first_byte, std::string_view payload, bool masked = true) {
  std::string out;
  out.push_back(static_cast<char>(first_byte));
  uint8_t len = static_cast<uint8_t>(payload.size() < 126 ? payload.size() : 126);
  out.push_back(static_cast<char>((masked ? 0x80 : 0) | len));
  if (len == 126) {
    out.push_back(static_cast<char>(payload.size() >> 8));
    out.push_back(static_cast<char>(payload.size() & 0xFF));
  }
  std::string body(payload);
  if (masked) {
    const uint8_t key[4] = {0x11, 0x22, 0x33, 0x44};
    out.append(reinterpret_cast<const char*>(key), 4);
    uint32_t k;
    std::memcpy(&k, key, 4);
    tether::codec::apply_mask(reinterpret_cast<uint8_t*>(body.data()), body.size(), k, 0);
  }
  return out + body;
}

inline uint16_t close_code_of(const std::string& payload) {
  return payload.size() >= 2
             ? static_cast<uint16_t>((uint8_t(payload[0]) << 8) | uint8_t(payload[1]))
             : 1005;
}

}  // namespace tether_test
