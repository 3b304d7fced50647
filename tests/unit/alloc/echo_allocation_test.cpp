// DESIGN habit 7 end to end: once warmed up, a server echoing messages allocates nothing per
// message on its loop thread, nor does a tether::Client (plain ws://, and with resume sessions;
// TLS and permessage-deflate have their own allocation tests in unit_tls and unit_extensions,
// and bench/alloc_echo counts them end to end).
//
// This directory is its own test binary (unit_alloc) because it replaces the global operator
// new: every form is counted, per thread role, so only what the server's loop thread allocates
// is asserted (the test's own threads allocate freely). bench/alloc_echo.cpp prints the same
// figures for more scenarios.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "codec/frame.hpp"
#include "codec/mask.hpp"
#include "tether/client.hpp"
#include "tether/loop.hpp"
#include "tether/server.hpp"

namespace {
// Which thread allocates: counted apart so that the server's loop thread can be judged alone.
enum Role : int { other = 0, server_loop = 1, client_loop = 2 };
thread_local int role = other;
std::atomic<uint64_t> allocations[3];

void* counted(std::size_t n) {
  allocations[role].fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n ? n : 1);
}
void* counted_aligned(std::size_t n, std::align_val_t a) {
  allocations[role].fetch_add(1, std::memory_order_relaxed);
  void* p = nullptr;
  const auto align = std::max(static_cast<std::size_t>(a), sizeof(void*));
  return posix_memalign(&p, align, n ? n : 1) == 0 ? p : nullptr;
}
uint64_t count(Role r) { return allocations[r].load(std::memory_order_relaxed); }
// Out of line: inlined into a delete, free() on memory from operator new would trip GCC's
// -Wmismatched-new-delete (the pairing is right: every new here is malloc).
[[gnu::noinline]] void release(void* p) noexcept { std::free(p); }
}  // namespace

void* operator new(std::size_t n) {
  if (void* p = counted(n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  if (void* p = counted(n)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return counted(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return counted(n); }
void* operator new(std::size_t n, std::align_val_t a) {
  if (void* p = counted_aligned(n, a)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n, std::align_val_t a) {
  if (void* p = counted_aligned(n, a)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return counted_aligned(n, a);
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return counted_aligned(n, a);
}
void operator delete(void* p) noexcept { release(p); }
void operator delete[](void* p) noexcept { release(p); }
void operator delete(void* p, std::size_t) noexcept { release(p); }
void operator delete[](void* p, std::size_t) noexcept { release(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { release(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { release(p); }
void operator delete(void* p, std::align_val_t) noexcept { release(p); }
void operator delete[](void* p, std::align_val_t) noexcept { release(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { release(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { release(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { release(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { release(p); }

namespace {

using namespace std::chrono_literals;
using tether::MessageType;

// A blocking raw client: pre-built frames and fixed buffers, so it allocates nothing itself.
class RawConn {
 public:
  explicit RawConn(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    timeval tv{10, 0};  // every wait is bounded
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    const std::string req =
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    ok_ = ok_ && write_all(req.data(), req.size());
    std::string head;
    char c;
    while (ok_ && head.find("\r\n\r\n") == std::string::npos && ::recv(fd_, &c, 1, 0) == 1)
      head += c;
    ok_ = ok_ && head.starts_with("HTTP/1.1 101");
  }
  ~RawConn() { ::close(fd_); }
  RawConn(const RawConn&) = delete;
  RawConn& operator=(const RawConn&) = delete;
  bool ok() const { return ok_; }
  int fd() const { return fd_; }

  bool write_all(const void* p, std::size_t n) {
    const char* c = static_cast<const char*>(p);
    while (n > 0) {
      const ssize_t k = ::send(fd_, c, n, MSG_NOSIGNAL);
      if (k <= 0) return false;
      c += k;
      n -= static_cast<std::size_t>(k);
    }
    return true;
  }
  bool read_exact(uint8_t* p, std::size_t n) {
    while (n > 0) {
      const ssize_t k = ::recv(fd_, p, n, 0);
      if (k <= 0) return false;
      p += k;
      n -= static_cast<std::size_t>(k);
    }
    return true;
  }

 private:
  int fd_ = -1;
  bool ok_ = false;
};

// One message kind: the masked frame a client sends and the frame the echo must be.
struct Wire {
  std::vector<uint8_t> request, response;
};

Wire wire_for(MessageType type, const std::string& payload, uint32_t key) {
  using namespace tether::codec;
  FrameHeader h;
  h.opcode = type == MessageType::text ? Opcode::text : Opcode::binary;
  h.payload_len = payload.size();
  Wire w;
  h.masked = true;
  h.mask_key = key;
  w.request.resize(header_size(h.payload_len, true) + payload.size());
  std::size_t hs = encode_header(h, w.request.data());
  std::memcpy(w.request.data() + hs, payload.data(), payload.size());
  apply_mask(w.request.data() + hs, payload.size(), key);
  h.masked = false;
  w.response.resize(header_size(h.payload_len, false) + payload.size());
  hs = encode_header(h, w.response.data());
  std::memcpy(w.response.data() + hs, payload.data(), payload.size());
  return w;
}

// Binary and text, 16 B and 1 KiB (text with 2- and 3-byte characters).
std::vector<std::pair<MessageType, std::string>> message_kinds() {
  std::string text_1k;
  const std::string_view chunk = "h\xc3\xa9llo w\xe2\x82\xacrld ";  // 2- and 3-byte characters
  while (text_1k.size() + chunk.size() <= 1024) text_1k += chunk;
  while (text_1k.size() < 1024) text_1k += '.';
  return {{MessageType::binary, std::string(16, '\x5a')},
          {MessageType::text, "sixteen bytes.ok"},
          {MessageType::binary, std::string(1024, '\x01')},
          {MessageType::text, text_1k}};
}

// An echo server on its own thread, which is tagged as the server's loop thread.
class EchoServer {
 public:
  explicit EchoServer(tether::ServerOptions o) : server_(with_port0(std::move(o))) {
    server_.on_message(
        [](tether::Connection& c, std::string_view d, MessageType t) { c.send(d, t); });
    listening_ = !server_.listen();
    if (listening_)
      thread_ = std::thread([this] {
        role = server_loop;
        server_.run();
      });
  }
  ~EchoServer() {
    if (!listening_) return;
    server_.stop();
    thread_.join();
  }
  bool listening() const { return listening_; }
  uint16_t port() const { return server_.port(); }

 private:
  static tether::ServerOptions with_port0(tether::ServerOptions o) {
    o.port = 0;
    o.threads = 1;
    return o;
  }
  tether::Server server_;
  bool listening_ = false;
  std::thread thread_;
};

// Closed-loop echo rounds over raw connections: each round sends one message on every
// connection, then reads every echo back and checks it.
struct RawEcho {
  RawEcho(uint16_t port, int n) {
    for (int i = 0; i < n; ++i) conns.push_back(std::make_unique<RawConn>(port));
    uint32_t key = 0x9e3779b9u;
    for (auto& [type, payload] : message_kinds())
      wires.push_back(wire_for(type, payload, key *= 3));
    in.resize(4096);
  }
  bool ok() const {
    for (auto& c : conns)
      if (!c->ok()) return false;
    return true;
  }
  // Returns false on any lost connection or wrong echo.
  bool round() {
    const Wire& w = wires[rounds++ % wires.size()];
    for (auto& c : conns)
      if (!c->write_all(w.request.data(), w.request.size())) return false;
    for (auto& c : conns) {
      // A heartbeat ping may come first (the server pings whoever was quiet for an interval).
      do {
        if (!c->read_exact(in.data(), 2)) return false;
        if ((in[0] & 0x08) != 0 && !c->read_exact(in.data() + 2, in[1] & 0x7F)) return false;
      } while ((in[0] & 0x08) != 0);
      if (!c->read_exact(in.data() + 2, w.response.size() - 2)) return false;
      if (std::memcmp(in.data(), w.response.data(), w.response.size()) != 0) return false;
    }
    echoed += conns.size();
    return true;
  }
  std::vector<std::unique_ptr<RawConn>> conns;
  std::vector<Wire> wires;
  std::vector<uint8_t> in;
  std::size_t rounds = 0, echoed = 0;
};

TEST(EchoAllocation, ServerLoopAllocatesNothingPerEchoedMessage) {
  EchoServer server{tether::ServerOptions{}};  // heartbeats at their defaults
  ASSERT_TRUE(server.listening());
  const uint64_t start = count(server_loop);
  RawEcho echo(server.port(), 4);
  ASSERT_TRUE(echo.ok());
  for (int i = 0; i < 500; ++i) ASSERT_TRUE(echo.round());  // buffers reach their working size
  const uint64_t before = count(server_loop);
  ASSERT_GT(before, start);  // the counter does see the server thread (the accepted connections)
  const std::size_t echoed_before = echo.echoed;
  for (int i = 0; i < 2500; ++i) ASSERT_TRUE(echo.round());
  EXPECT_EQ(count(server_loop) - before, 0u)
      << "allocations on the server's loop thread while echoing " << echo.echoed - echoed_before
      << " messages (run build*/bench/alloc_echo --trace to see where)";
}

// Heartbeats while traffic flows: an idle peer is pinged every 20 ms (its timer fires, the ping
// is queued from outside the I/O callback and flushed by a deferred callback) while the other
// connections echo. None of it may allocate.
TEST(EchoAllocation, HeartbeatPingsAndDeferredFlushesAllocateNothing) {
  tether::ServerOptions o;
  o.ping_interval = 20ms;
  o.ping_timeout = 10s;  // the idle peer never answers, and must not be dropped meanwhile
  EchoServer server{o};
  ASSERT_TRUE(server.listening());
  RawEcho echo(server.port(), 2);
  RawConn idle(server.port());
  ASSERT_TRUE(echo.ok() && idle.ok());
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(echo.round());
  std::this_thread::sleep_for(60ms);  // the first pings (the wheel's slots and lists warm up)
  const uint64_t before = count(server_loop);
  const auto until = std::chrono::steady_clock::now() + 300ms;
  while (std::chrono::steady_clock::now() < until) ASSERT_TRUE(echo.round());
  EXPECT_EQ(count(server_loop) - before, 0u);

  // The idle peer was pinged meanwhile (several 2-byte + 12-byte ping frames are waiting).
  uint8_t buf[4096];
  ssize_t n = ::recv(idle.fd(), buf, sizeof buf, MSG_DONTWAIT);
  int pings = 0;
  for (ssize_t at = 0; n > 0 && at + 2 <= n;) {
    if ((buf[at] & 0x0F) == 0x9) ++pings;
    at += 2 + (buf[at + 1] & 0x7F);
  }
  EXPECT_GE(pings, 5);
}

// The client side too: tether::Client instances on one loop, echoing back what the server
// echoes; the client's loop thread must not allocate per message either. With `resume`, through
// tether.resume.v1 sessions (numbered frames, acks, the replay window); the measured stretch
// takes every connection's sequence numbers from 3 to 4 decimal digits, so frames grow by a byte
// or two in the middle of it.
struct ClientEchoCounts {
  long echoed = 0;
  uint64_t client = 0, server = 0;
};

ClientEchoCounts client_echo(bool resume) {
  tether::ServerOptions so;
  if (!resume) so.resume_window = 0ms;
  EchoServer server{so};
  EXPECT_TRUE(server.listening());
  const auto kinds = message_kinds();
  tether::Loop loop;
  constexpr long warmup = 2000, measured = 8000;  // 4 connections: 500 each, then 2500 more
  ClientEchoCounts counts;
  long& echoed = counts.echoed;  // touched on the loop thread only
  uint64_t client_before = 0, server_before = 0;
  std::vector<std::unique_ptr<tether::Client>> clients;
  std::vector<std::size_t> next(4, 0);
  for (std::size_t i = 0; i < next.size(); ++i) {
    tether::ClientOptions o;
    o.url = "ws://127.0.0.1:" + std::to_string(server.port()) + "/";
    o.reconnect = false;
    o.resume = resume;
    auto c = std::make_unique<tether::Client>(loop, o);
    tether::Client* self = c.get();
    std::size_t* k = &next[i];
    auto send_next = [self, k, &kinds] {
      const auto& [type, payload] = kinds[(*k)++ % kinds.size()];
      self->send(payload, type);
    };
    c->on_open(send_next);
    c->on_message([&, send_next](std::string_view, MessageType) {
      ++echoed;
      if (echoed == warmup) {
        client_before = count(client_loop);
        server_before = count(server_loop);
      } else if (echoed == warmup + measured) {
        counts.client = count(client_loop) - client_before;
        counts.server = count(server_loop) - server_before;
        loop.stop();
      }
      if (echoed < warmup + measured) send_next();
    });
    clients.push_back(std::move(c));
  }
  for (auto& c : clients) c->connect();
  std::atomic<bool> done{false};
  std::thread t([&] {
    role = client_loop;
    loop.run();
    done = true;
  });
  // Bounded: a lost connection must fail the test, not hang it.
  for (int i = 0; i < 3000 && !done; ++i) std::this_thread::sleep_for(10ms);
  loop.stop();
  t.join();
  EXPECT_GE(echoed, warmup + measured);
  clients.clear();  // before the loop, after it stopped
  return counts;
}

TEST(EchoAllocation, ClientLoopAllocatesNothingPerEchoedMessage) {
  const auto c = client_echo(false);
  EXPECT_EQ(c.client, 0u) << "on the client's loop thread";
  EXPECT_EQ(c.server, 0u) << "on the server's loop thread";
}

TEST(EchoAllocation, ResumeSessionsAllocateNothingPerEchoedMessage) {
  const auto c = client_echo(true);
  EXPECT_EQ(c.client, 0u) << "on the client's loop thread";
  EXPECT_EQ(c.server, 0u) << "on the server's loop thread";
}

}  // namespace
