// Heap allocations per echoed message (DESIGN habit 7: steady state allocates nothing per
// message). Replaces every form of the global operator new with a counting one, starts an echo
// tether::Server in-process (plain ws://, no TLS, no permessage-deflate, no resume), drives it
// with closed-loop clients sending binary and text messages of 16 B and 1 KiB, and after a
// warm-up counts the allocations made while M messages are echoed.
//
// Allocations are counted per thread role (a thread_local tag): the server's loop thread and
// the tether::Client loop thread are counted apart, so the figures say which side allocates.
// Only operator new is counted (the library's C++ allocations); malloc from OpenSSL or zlib is
// not, and neither is used on this path.
//
//   build-micro/bench/alloc_echo                    # the three scenarios below, one table
//   build-micro/bench/alloc_echo --trace            # + size and stack of each server allocation
//     (symbolise the +0x offsets with: addr2line -f -C -e build-micro/bench/alloc_echo 0x...)
//   build-micro/bench/alloc_echo --conns 16 --messages 100000
//
// Scenarios:
//   raw       raw loopback sockets (pre-built masked frames, no allocation) against the server;
//             heartbeats at the defaults (25 s ping interval: none fire during the run).
//   raw+ping  the same with a 20 ms ping interval and one idle connection that never answers
//             (so the server's heartbeat pings, timers and deferred flushes run while counting).
//   client    tether::Client instances on one tether::Loop echoing back; both sides counted.
//   deflate   the same with permessage-deflate negotiated (zlib's own mallocs are not counted).
//   resume    the same with tether.resume.v1 sessions (numbering, acks, replay window).
//   tls       the same over wss:// (a throwaway self-signed certificate made with `openssl req`);
//             OpenSSL's CRYPTO_malloc calls are counted too, on their own line.
#include <arpa/inet.h>
#include <execinfo.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
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

// ---- counting operator new / delete (every form)

namespace counting {
enum Role : int { other = 0, server = 1, client = 2 };
thread_local int role = other;
thread_local bool in_trace = false;
std::atomic<uint64_t> counts[3];
std::atomic<bool> trace{false};
std::atomic<long> echoed{0};  // messages echoed so far, printed with each traced allocation

void note(std::size_t n) {
  counts[role].fetch_add(1, std::memory_order_relaxed);
  if (role == server && trace.load(std::memory_order_relaxed) && !in_trace) {
    in_trace = true;  // backtrace() may allocate the first time
    void* frames[24];
    const int k = backtrace(frames, 24);
    std::fprintf(stderr, "---- server-thread allocation of %zu bytes after %ld echoes:\n", n,
                 echoed.load(std::memory_order_relaxed));
    backtrace_symbols_fd(frames, k, 2);
    in_trace = false;
  }
}
void* allocate(std::size_t n) {
  note(n);
  return std::malloc(n ? n : 1);
}
void* allocate_aligned(std::size_t n, std::align_val_t a) {
  note(n);
  void* p = nullptr;
  const auto align = std::max(static_cast<std::size_t>(a), sizeof(void*));
  return posix_memalign(&p, align, n ? n : 1) == 0 ? p : nullptr;
}
uint64_t get(Role r) { return counts[r].load(std::memory_order_relaxed); }
// Out of line: inlined into a delete, free() on memory from operator new would trip GCC's
// -Wmismatched-new-delete (the pairing is right: every new here is malloc).
[[gnu::noinline]] void release(void* p) noexcept { std::free(p); }

// OpenSSL's own allocations (CRYPTO_malloc/realloc), per role as well: the TLS scenario counts
// them too. CRYPTO_set_mem_functions only works before OpenSSL's first allocation, hence the
// namespace-scope initializer.
std::atomic<uint64_t> openssl_counts[3];
void* openssl_malloc(size_t n, const char*, int) {
  openssl_counts[role].fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n);
}
void* openssl_realloc(void* p, size_t n, const char*, int) {
  openssl_counts[role].fetch_add(1, std::memory_order_relaxed);
  return std::realloc(p, n);
}
void openssl_free(void* p, const char*, int) { std::free(p); }
const bool openssl_counted =
    CRYPTO_set_mem_functions(openssl_malloc, openssl_realloc, openssl_free) == 1;
uint64_t get_openssl(Role r) { return openssl_counts[r].load(std::memory_order_relaxed); }
}  // namespace counting

void* operator new(std::size_t n) {
  if (void* p = counting::allocate(n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  if (void* p = counting::allocate(n)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return counting::allocate(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  return counting::allocate(n);
}
void* operator new(std::size_t n, std::align_val_t a) {
  if (void* p = counting::allocate_aligned(n, a)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n, std::align_val_t a) {
  if (void* p = counting::allocate_aligned(n, a)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return counting::allocate_aligned(n, a);
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return counting::allocate_aligned(n, a);
}
void operator delete(void* p) noexcept { counting::release(p); }
void operator delete[](void* p) noexcept { counting::release(p); }
void operator delete(void* p, std::size_t) noexcept { counting::release(p); }
void operator delete[](void* p, std::size_t) noexcept { counting::release(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { counting::release(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { counting::release(p); }
void operator delete(void* p, std::align_val_t) noexcept { counting::release(p); }
void operator delete[](void* p, std::align_val_t) noexcept { counting::release(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { counting::release(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { counting::release(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  counting::release(p);
}
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  counting::release(p);
}

namespace {

using Clock = std::chrono::steady_clock;

struct Settings {
  int conns = 8;
  long warmup = 4000;     // echoed messages before counting starts
  long messages = 40000;  // echoed messages counted
  bool trace = false;
};

// The four messages every connection cycles through: binary/text x 16 B/1 KiB. Text is valid
// UTF-8 with multi-byte characters, so the validator runs its slow path too.
struct Message {
  tether::MessageType type;
  std::string payload;
};
std::vector<Message> messages() {
  std::string text_1k;
  const std::string_view chunk = "h\xc3\xa9llo w\xe2\x82\xacrld ";  // 2- and 3-byte characters
  while (text_1k.size() + chunk.size() <= 1024) text_1k += chunk;
  while (text_1k.size() < 1024) text_1k += '.';
  return {{tether::MessageType::binary, std::string(16, '\x5a')},
          {tether::MessageType::text, "sixteen bytes.ok"},
          {tether::MessageType::binary, std::string(1024, '\x01')},
          {tether::MessageType::text, text_1k}};
}

// ---- raw loopback client: pre-built masked frames, fixed buffers, blocking sockets

class RawConn {
 public:
  explicit RawConn(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) std::abort();
    const std::string_view req =
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    write_all(req.data(), req.size());
    std::string head;
    char c;
    while (head.find("\r\n\r\n") == std::string::npos && ::recv(fd_, &c, 1, 0) == 1) head += c;
    if (!head.starts_with("HTTP/1.1 101")) {
      std::fprintf(stderr, "upgrade refused: %s\n", head.c_str());
      std::abort();
    }
  }
  ~RawConn() { ::close(fd_); }
  RawConn(const RawConn&) = delete;
  RawConn& operator=(const RawConn&) = delete;

  void write_all(const void* p, std::size_t n) {
    const char* c = static_cast<const char*>(p);
    while (n > 0) {
      const ssize_t k = ::send(fd_, c, n, MSG_NOSIGNAL);
      if (k <= 0) std::abort();
      c += k;
      n -= static_cast<std::size_t>(k);
    }
  }
  void read_exact(uint8_t* p, std::size_t n) {
    while (n > 0) {
      const ssize_t k = ::recv(fd_, p, n, 0);
      if (k <= 0) {
        std::fprintf(stderr, "raw client: connection lost\n");
        std::abort();
      }
      p += k;
      n -= static_cast<std::size_t>(k);
    }
  }

 private:
  int fd_ = -1;
};

struct Wire {
  std::vector<uint8_t> request;   // masked client frame
  std::vector<uint8_t> response;  // the unmasked server frame expected back
};

Wire wire_for(const Message& m, uint32_t key) {
  using namespace tether::codec;
  const auto* p = reinterpret_cast<const uint8_t*>(m.payload.data());
  FrameHeader h;
  h.opcode = m.type == tether::MessageType::text ? Opcode::text : Opcode::binary;
  h.payload_len = m.payload.size();
  Wire w;
  h.masked = true;
  h.mask_key = key;
  w.request.resize(header_size(h.payload_len, true) + m.payload.size());
  std::size_t hs = encode_header(h, w.request.data());
  std::memcpy(w.request.data() + hs, p, m.payload.size());
  apply_mask(w.request.data() + hs, m.payload.size(), key);
  h.masked = false;
  w.response.resize(header_size(h.payload_len, false) + m.payload.size());
  hs = encode_header(h, w.response.data());
  std::memcpy(w.response.data() + hs, p, m.payload.size());
  return w;
}

struct Result {
  const char* name;
  long messages = 0;
  uint64_t server_allocs = 0, client_allocs = 0;
  uint64_t server_openssl = 0, client_openssl = 0;  // CRYPTO_malloc/realloc (TLS only)
  bool client_counted = false;
  double seconds = 0;
};

tether::ServerOptions server_options(std::chrono::milliseconds ping) {
  tether::ServerOptions o;
  o.port = 0;
  o.threads = 1;
  if (ping.count() > 0) o.ping_interval = ping;  // ping_timeout stays 20 s: the idle peer lives
  return o;
}

// Runs `server` on its own thread, tagged as the server role.
struct ServerThread {
  explicit ServerThread(tether::Server& s) : server(s) {
    thread = std::thread([this] {
      counting::role = counting::server;
      server.run();
    });
  }
  ~ServerThread() {
    server.stop();
    thread.join();
  }
  tether::Server& server;
  std::thread thread;
};

Result run_raw(const Settings& s, std::chrono::milliseconds ping, const char* name) {
  tether::Server server(server_options(ping));
  server.on_message(
      [](tether::Connection& c, std::string_view d, tether::MessageType t) { c.send(d, t); });
  if (auto ec = server.listen()) {
    std::fprintf(stderr, "listen: %s\n", ec.message().c_str());
    std::exit(1);
  }
  ServerThread st(server);
  std::vector<std::unique_ptr<RawConn>> conns;
  for (int i = 0; i < s.conns; ++i) conns.push_back(std::make_unique<RawConn>(server.port()));
  // An idle peer that never reads nor answers: the server keeps pinging it.
  std::unique_ptr<RawConn> idle;
  if (ping.count() > 0) idle = std::make_unique<RawConn>(server.port());

  const auto msgs = messages();
  std::vector<Wire> wires;
  for (std::size_t i = 0; i < msgs.size(); ++i)
    wires.push_back(wire_for(msgs[i], 0x9e3779b9u * static_cast<uint32_t>(i + 1)));
  std::vector<uint8_t> in(4096);

  long echoed = 0;
  auto rounds = [&](long n) {
    for (long done = 0; done < n;) {
      const Wire& w = wires[static_cast<std::size_t>(echoed / s.conns) % wires.size()];
      for (auto& c : conns) c->write_all(w.request.data(), w.request.size());
      for (auto& c : conns) {
        // A heartbeat ping may come first (whoever was quiet for an interval is pinged).
        do {
          c->read_exact(in.data(), 2);
          if (in[0] & 0x08) c->read_exact(in.data() + 2, in[1] & 0x7F);
        } while (in[0] & 0x08);
        c->read_exact(in.data() + 2, w.response.size() - 2);
        if (std::memcmp(in.data(), w.response.data(), w.response.size()) != 0) {
          std::fprintf(stderr, "raw client: echo differs\n");
          std::abort();
        }
      }
      done += s.conns;
      echoed += s.conns;
      counting::echoed.store(echoed, std::memory_order_relaxed);
    }
  };
  rounds(s.warmup);
  Result r{name};
  const uint64_t a0 = counting::get(counting::server);
  counting::trace = s.trace;
  const auto t0 = Clock::now();
  const long before = echoed;
  rounds(s.messages);
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  counting::trace = false;
  r.server_allocs = counting::get(counting::server) - a0;
  r.messages = echoed - before;
  return r;
}

// What a client scenario turns on, on both ends.
struct Variant {
  const char* name;
  bool deflate = false;  // permessage-deflate (1 KiB messages compressed, 16 B under threshold)
  bool resume = false;   // tether.resume.v1 sessions
  bool tls = false;      // wss:// with a throwaway self-signed certificate
};

// A self-signed certificate for the TLS scenario, made with the openssl command.
bool make_cert(std::string& cert, std::string& key) {
  const std::string dir = "/tmp/tether_alloc_echo_" + std::to_string(::getpid());
  cert = dir + "/cert.pem";
  key = dir + "/key.pem";
  const std::string cmd = "mkdir -p " + dir +
                          " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
                          "-nodes -subj /CN=localhost -days 1 -keyout " +
                          key + " -out " + cert + " 2>/dev/null";
  return std::system(cmd.c_str()) == 0;
}

Result run_client(const Settings& s, const Variant& v) {
  tether::ServerOptions so = server_options(std::chrono::milliseconds(0));
  so.deflate.enabled = v.deflate;
  if (!v.resume) so.resume_window = std::chrono::milliseconds(0);
  std::string cert, key;
  if (v.tls) {
    if (!make_cert(cert, key)) {
      std::fprintf(stderr, "openssl req failed: TLS scenario skipped\n");
      return Result{v.name};
    }
    so.tls.cert_file = cert;
    so.tls.key_file = key;
  }
  tether::Server server(so);
  server.on_message(
      [](tether::Connection& c, std::string_view d, tether::MessageType t) { c.send(d, t); });
  if (auto ec = server.listen()) {
    std::fprintf(stderr, "listen: %s\n", ec.message().c_str());
    std::exit(1);
  }
  ServerThread st(server);

  const auto msgs = messages();
  Result r{v.name};
  r.client_counted = true;
  tether::Loop loop;
  std::vector<std::unique_ptr<tether::Client>> clients;
  long echoed = 0;  // only touched on the loop thread
  uint64_t s0 = 0, c0 = 0, so0 = 0, co0 = 0;
  Clock::time_point t0;
  const std::string url =
      std::string(v.tls ? "wss" : "ws") + "://127.0.0.1:" + std::to_string(server.port()) + "/";
  for (int i = 0; i < s.conns; ++i) {
    tether::ClientOptions o;
    o.url = url;
    o.reconnect = false;
    o.deflate.enabled = v.deflate;
    o.resume = v.resume;
    o.tls_verify = false;
    auto c = std::make_unique<tether::Client>(loop, o);
    tether::Client* self = c.get();
    auto next = std::make_shared<std::size_t>(0);
    c->on_open([self, next, &msgs] {
      const auto& m = msgs[(*next)++ % msgs.size()];
      self->send(m.payload, m.type);
    });
    c->on_message([&, self, next](std::string_view, tether::MessageType) {
      ++echoed;
      counting::echoed.store(echoed, std::memory_order_relaxed);
      if (echoed == s.warmup) {
        s0 = counting::get(counting::server);
        c0 = counting::get(counting::client);
        so0 = counting::get_openssl(counting::server);
        co0 = counting::get_openssl(counting::client);
        counting::trace = s.trace;
        t0 = Clock::now();
      } else if (echoed == s.warmup + s.messages) {
        counting::trace = false;
        r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
        r.server_allocs = counting::get(counting::server) - s0;
        r.client_allocs = counting::get(counting::client) - c0;
        r.server_openssl = counting::get_openssl(counting::server) - so0;
        r.client_openssl = counting::get_openssl(counting::client) - co0;
        r.messages = s.messages;
        loop.stop();
        return;
      }
      if (echoed > s.warmup + s.messages) return;
      const auto& m = msgs[(*next)++ % msgs.size()];
      self->send(m.payload, m.type);
    });
    c->on_close([](const tether::CloseInfo& info) {
      if (info.code != 1000 && info.code != 1001)
        std::fprintf(stderr, "client closed: %u %s\n", info.code, info.reason.c_str());
    });
    clients.push_back(std::move(c));
  }
  for (auto& c : clients) c->connect();
  std::thread lt([&] {
    counting::role = counting::client;
    loop.run();
  });
  lt.join();
  clients.clear();  // after the loop has stopped, before it is destroyed
  if (v.tls) std::system(("rm -rf " + cert.substr(0, cert.rfind('/'))).c_str());
  return r;
}

void print(const Result& r) {
  const double per = r.messages ? static_cast<double>(r.server_allocs) / r.messages : 0;
  std::printf("%-9s %9ld %14llu %10.4f", r.name, r.messages,
              static_cast<unsigned long long>(r.server_allocs), per);
  if (r.client_counted)
    std::printf(" %14llu %10.4f", static_cast<unsigned long long>(r.client_allocs),
                r.messages ? static_cast<double>(r.client_allocs) / r.messages : 0);
  else
    std::printf(" %14s %10s", "-", "-");
  std::printf(" %12.0f\n", r.seconds > 0 ? r.messages / r.seconds : 0);
  if (r.server_openssl || r.client_openssl)
    std::printf("%-9s   OpenSSL allocations: server %llu (%.4f/msg), client %llu (%.4f/msg)\n", "",
                static_cast<unsigned long long>(r.server_openssl),
                r.messages ? static_cast<double>(r.server_openssl) / r.messages : 0,
                static_cast<unsigned long long>(r.client_openssl),
                r.messages ? static_cast<double>(r.client_openssl) / r.messages : 0);
}

}  // namespace

int main(int argc, char** argv) {
  Settings s;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    auto value = [&] {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", argv[i]);
        std::exit(2);
      }
      return std::atol(argv[++i]);
    };
    if (a == "--conns") {
      s.conns = static_cast<int>(value());
    } else if (a == "--warmup") {
      s.warmup = value();
    } else if (a == "--messages") {
      s.messages = value();
    } else if (a == "--trace") {
      s.trace = true;
    } else if (a == "--only" && i + 1 < argc) {
      only = argv[++i];
    } else {
      std::fprintf(stderr,
                   "usage: alloc_echo [--conns N] [--warmup N] [--messages N] [--trace] "
                   "[--only raw|raw+ping|client|deflate|resume|tls]\n");
      return 2;
    }
  }
  // Whole rounds of the four message kinds on every connection.
  const long round = 4L * s.conns;
  s.warmup = std::max(round, s.warmup / round * round);
  s.messages = std::max(round, s.messages / round * round);
  std::printf("alloc_echo: %d connections, binary+text x 16 B+1 KiB, warm-up %ld, counted %ld\n",
              s.conns, s.warmup, s.messages);
  std::printf("%-9s %9s %14s %10s %14s %10s %12s\n", "scenario", "messages", "server allocs",
              "per msg", "client allocs", "per msg", "msgs/s");
  if (only.empty() || only == "raw") print(run_raw(s, std::chrono::milliseconds(0), "raw"));
  if (only.empty() || only == "raw+ping")
    print(run_raw(s, std::chrono::milliseconds(20), "raw+ping"));
  const Variant variants[] = {
      {"client"}, {"deflate", true}, {"resume", false, true}, {"tls", false, false, true}};
  for (const Variant& v : variants)
    if (only.empty() || only == v.name) print(run_client(s, v));
  return 0;
}
