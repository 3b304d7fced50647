// raw_heartbeat: the raw TCP floor for heartbeats, for bench/idle.sh --floor. It puts on the wire
// exactly the bytes `tether serve --ping-interval I` exchanges with idle connections (a 16-byte
// ping frame out every I per connection, the client's 20-byte pong in) and does nothing else:
// no WebSocket state machine, no liveness bookkeeping, no RTT, no per-connection timer, no
// parsing beyond finding frame boundaries. What it costs a server core is what the kernel charges
// for that traffic on this machine, the least any server can spend on the same heartbeats.
//
//   raw_heartbeat --port 0 --ping-interval 200ms|1s|25s [--tick 10ms] [--uring]
//
// Listens on 127.0.0.1 and prints `listening ws://127.0.0.1:PORT/` (the line `tether serve`
// prints), so idle.sh runs it in tether's place with the same client (bench/idle_conns). SIGTERM
// stops it. Errors go to stderr (idle.sh treats any stderr output as a failed run).
//
// Per connection: the HTTP upgrade is answered with 101 (Sec-WebSocket-Accept from OpenSSL's
// SHA-1); from then on a ping is due every I after the upgrade, rounded up to the next --tick like
// tether's timer wheel (10 ms), so the pings of connections opened together leave together as
// tether's do. All connections share one interval, so the due list is a FIFO: the connection
// whose ping went out goes to the back. Pongs are read and dropped; a close frame is answered
// with a close frame (1000) and the connection closed, so the client's closing handshake ends
// cleanly. Same socket settings as tether: non-blocking, TCP_NODELAY.
//
// --uring: the same traffic with the system calls batched through io_uring (raw io_uring_setup /
// io_uring_enter, no liburing): one submission carries all the pings due in a tick, and one
// carries the receives for all the connections an epoll_wait reported ready. It measures how much
// of the floor is system-call overhead that batching could remove (the TCP work stays).
#include <arpa/inet.h>
#include <linux/io_uring.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "loopback_listener.hpp"

namespace {

void die(const char* what) {
  std::fprintf(stderr, "raw_heartbeat: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

int64_t now_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

// "200ms", "1s", "25s", "1500" (ms) -> milliseconds; -1 when malformed.
int64_t parse_ms(const char* s) {
  char* end = nullptr;
  const double v = std::strtod(s, &end);
  if (end == s || v <= 0) return -1;
  if (std::strcmp(end, "ms") == 0 || *end == '\0') return static_cast<int64_t>(v);
  if (std::strcmp(end, "s") == 0) return static_cast<int64_t>(v * 1000);
  return -1;
}

struct Conn {
  uint32_t gen = 0;   // bumped on close: stale entries in the due list are skipped
  bool open = false;  // upgraded: pings are due
  std::string in;     // the HTTP request while upgrading; then a partial frame, if any
};

struct Due {
  int64_t at;
  int fd;
  uint32_t gen;
};

// A minimal io_uring: queue SQEs, then submit them all and wait for all their completions.
class Ring {
 public:
  static constexpr unsigned kEntries = 4096;
  void init() {
    io_uring_params p{};
    fd_ = static_cast<int>(syscall(__NR_io_uring_setup, kEntries, &p));
    if (fd_ < 0) die("io_uring_setup");
    const std::size_t sq_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    const std::size_t cq_len = p.cq_off.cqes + p.cq_entries * sizeof(io_uring_cqe);
    auto* sq = static_cast<char*>(map(sq_len, IORING_OFF_SQ_RING));
    auto* cq = static_cast<char*>(map(cq_len, IORING_OFF_CQ_RING));
    sqes_ = static_cast<io_uring_sqe*>(map(p.sq_entries * sizeof(io_uring_sqe), IORING_OFF_SQES));
    sq_tail_ = reinterpret_cast<unsigned*>(sq + p.sq_off.tail);
    sq_mask_ = *reinterpret_cast<unsigned*>(sq + p.sq_off.ring_mask);
    sq_array_ = reinterpret_cast<unsigned*>(sq + p.sq_off.array);
    cq_head_ = reinterpret_cast<unsigned*>(cq + p.cq_off.head);
    cq_tail_ = reinterpret_cast<unsigned*>(cq + p.cq_off.tail);
    cq_mask_ = *reinterpret_cast<unsigned*>(cq + p.cq_off.ring_mask);
    cqes_ = reinterpret_cast<io_uring_cqe*>(cq + p.cq_off.cqes);
  }
  bool full() const { return queued_ == kEntries; }
  // One SEND / RECV of `len` bytes at `addr` on `fd`; `tag` comes back with its result.
  void queue(uint8_t op, int fd, void* addr, unsigned len, uint64_t tag) {
    const unsigned tail = *sq_tail_;
    const unsigned idx = tail & sq_mask_;
    io_uring_sqe& e = sqes_[idx];
    std::memset(&e, 0, sizeof e);
    e.opcode = op;
    e.fd = fd;
    e.addr = reinterpret_cast<uintptr_t>(addr);
    e.len = len;
    e.msg_flags = op == IORING_OP_SEND ? MSG_NOSIGNAL : 0;
    e.user_data = tag;
    sq_array_[idx] = idx;
    __atomic_store_n(sq_tail_, tail + 1, __ATOMIC_RELEASE);
    ++queued_;
  }
  // Submits what is queued and calls done(tag, result) for each as it completes.
  template <class Done>
  void run(Done done) {
    unsigned to_submit = queued_, outstanding = queued_;
    while (outstanding > 0) {
      const int r = static_cast<int>(syscall(__NR_io_uring_enter, fd_, to_submit, outstanding,
                                             IORING_ENTER_GETEVENTS, nullptr, 0));
      if (r < 0) {
        if (errno == EINTR) continue;
        die("io_uring_enter");
      }
      to_submit -= std::min<unsigned>(to_submit, static_cast<unsigned>(r));
      unsigned head = *cq_head_;
      const unsigned tail = __atomic_load_n(cq_tail_, __ATOMIC_ACQUIRE);
      for (; head != tail; ++head, --outstanding) {
        const io_uring_cqe& c = cqes_[head & cq_mask_];
        done(c.user_data, c.res);
      }
      __atomic_store_n(cq_head_, head, __ATOMIC_RELEASE);
    }
    queued_ = 0;
  }

 private:
  void* map(std::size_t len, off_t what) {
    void* m = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_, what);
    if (m == MAP_FAILED) die("mmap io_uring");
    return m;
  }
  int fd_ = -1;
  io_uring_sqe* sqes_ = nullptr;
  io_uring_cqe* cqes_ = nullptr;
  unsigned *sq_tail_ = nullptr, *sq_array_ = nullptr, *cq_head_ = nullptr, *cq_tail_ = nullptr;
  unsigned sq_mask_ = 0, cq_mask_ = 0, queued_ = 0;
};

std::string accept_key(const std::string& key) {
  const std::string src = key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";  // RFC 6455 §4.2.2
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(src.data()), src.size(), digest);
  unsigned char out[64];
  const int n = EVP_EncodeBlock(out, digest, SHA_DIGEST_LENGTH);
  return std::string(reinterpret_cast<char*>(out), static_cast<std::size_t>(n));
}

// The Sec-WebSocket-Key header's value, "" when absent.
std::string find_key(const std::string& req) {
  static const char name[] = "sec-websocket-key:";
  std::string lower(req.size(), '\0');
  for (std::size_t i = 0; i < req.size(); ++i)
    lower[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(req[i])));
  const std::size_t p = lower.find(name);
  if (p == std::string::npos) return "";
  std::size_t b = p + sizeof name - 1;
  while (b < req.size() && req[b] == ' ') ++b;
  std::size_t e = req.find("\r\n", b);
  if (e == std::string::npos) return "";
  while (e > b && req[e - 1] == ' ') --e;
  return req.substr(b, e - b);
}

}  // namespace

int main(int argc, char** argv) {
  int port = -1;
  int64_t interval = -1, tick = 10;
  bool uring = false;
  int nargs = argc - 1;
  if (nargs > 0 && std::strcmp(argv[argc - 1], "--uring") == 0) {
    uring = true;
    --nargs;
  }
  for (int i = 1; i + 1 <= nargs; i += 2) {
    if (std::strcmp(argv[i], "--port") == 0)
      port = std::atoi(argv[i + 1]);
    else if (std::strcmp(argv[i], "--ping-interval") == 0)
      interval = parse_ms(argv[i + 1]);
    else if (std::strcmp(argv[i], "--tick") == 0)
      tick = parse_ms(argv[i + 1]);
    else {
      std::fprintf(stderr, "raw_heartbeat: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (nargs % 2 != 0 || port < 0 || port > 65535 || interval <= 0 || tick <= 0) {
    std::fprintf(stderr, "usage: raw_heartbeat --port P --ping-interval I [--tick T] [--uring]\n");
    return 2;
  }

  const bench_peers::Listener l = bench_peers::listen_loopback(port);
  if (l.failed) die(l.failed);
  const int lfd = l.fd;
  const int ep = l.epoll;
  int one = 1;
  std::printf("listening ws://127.0.0.1:%d/\n", l.port);
  std::fflush(stdout);

  std::vector<Conn> conns;  // indexed by fd
  std::deque<Due> due;      // one interval for all: ordered by `at`
  std::vector<epoll_event> events(1024);
  std::vector<char> buf(64 * 1024);
  // A ping as tether sends it: FIN + opcode 9, unmasked, 14 bytes of payload (16 on the wire).
  unsigned char ping[16] = {0x89, 14};
  const auto round_up = [tick](int64_t t) { return (t + tick - 1) / tick * tick; };

  const auto close_conn = [&](int fd) {
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
    close(fd);
    conns[static_cast<std::size_t>(fd)].gen++;
    conns[static_cast<std::size_t>(fd)].open = false;
    conns[static_cast<std::size_t>(fd)].in.clear();
  };

  Ring ring;
  if (uring) ring.init();
  // --uring: each ready connection's receive lands in its own slot (a pong is 20 bytes).
  constexpr std::size_t kSlot = 256;
  std::vector<char> slots(uring ? events.size() * kSlot : 0);
  std::vector<int> slot_res(events.size());
  // A full send buffer for 16 bytes means the peer stopped reading: drop it.
  const auto sent = [&](uint64_t fd, int res) {
    if (res != static_cast<int>(sizeof ping)) close_conn(static_cast<int>(fd));
  };

  for (;;) {
    int64_t t = now_ms();
    while (!due.empty() && due.front().at <= t) {
      const Due d = due.front();
      due.pop_front();
      Conn& c = conns[static_cast<std::size_t>(d.fd)];
      if (c.gen != d.gen || !c.open) continue;  // closed since
      due.push_back({round_up(d.at + interval), d.fd, d.gen});
      if (uring) {  // the payload's value does not matter: all share one buffer
        ring.queue(IORING_OP_SEND, d.fd, ping, sizeof ping, static_cast<uint64_t>(d.fd));
        if (ring.full()) ring.run(sent);
        continue;
      }
      std::memcpy(ping + 2, &d.at, sizeof d.at);  // some payload; its value does not matter
      sent(static_cast<uint64_t>(d.fd),
           static_cast<int>(send(d.fd, ping, sizeof ping, MSG_NOSIGNAL)));
    }
    if (uring) ring.run(sent);
    int timeout = -1;
    if (!due.empty()) timeout = static_cast<int>(std::max<int64_t>(0, due.front().at - t));
    const int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), timeout);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    if (uring && n > 0) {
      for (int i = 0; i < n; ++i) {
        const int fd = events[static_cast<std::size_t>(i)].data.fd;
        if (fd != lfd && conns[static_cast<std::size_t>(fd)].open)
          ring.queue(IORING_OP_RECV, fd, slots.data() + static_cast<std::size_t>(i) * kSlot, kSlot,
                     static_cast<uint64_t>(i));
      }
      ring.run([&](uint64_t i, int res) { slot_res[i] = res; });
    }
    for (int i = 0; i < n; ++i) {
      const int fd = events[static_cast<std::size_t>(i)].data.fd;
      if (fd == lfd) {
        for (;;) {
          const int cfd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (cfd < 0) break;
          setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          if (static_cast<std::size_t>(cfd) >= conns.size())
            conns.resize(static_cast<std::size_t>(cfd) + 1024);
          epoll_event cev{};
          cev.events = EPOLLIN;
          cev.data.fd = cfd;
          epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &cev);
        }
        continue;
      }
      Conn& c = conns[static_cast<std::size_t>(fd)];
      const bool ringed = uring && c.open;
      const char* in = ringed ? slots.data() + static_cast<std::size_t>(i) * kSlot : buf.data();
      ssize_t got = 0;
      if (ringed) {
        got = slot_res[static_cast<std::size_t>(i)];
        if (got < 0) errno = static_cast<int>(-got), got = -1;
      } else {
        got = recv(fd, buf.data(), buf.size(), 0);
      }
      if (got <= 0) {
        if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        close_conn(fd);
        continue;
      }
      if (!c.open) {  // the upgrade request
        c.in.append(in, static_cast<std::size_t>(got));
        if (c.in.find("\r\n\r\n") == std::string::npos) {
          if (c.in.size() > 8192) close_conn(fd);
          continue;
        }
        const std::string key = find_key(c.in);
        const std::string resp =
            key.empty() ? std::string("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                        : "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Accept: " +
                              accept_key(key) + "\r\n\r\n";
        send(fd, resp.data(), resp.size(), MSG_NOSIGNAL);
        if (key.empty()) {
          close_conn(fd);
          continue;
        }
        c.in.clear();
        c.open = true;
        due.push_back({round_up(now_ms() + interval), fd, c.gen});
        continue;
      }
      // Frames from the client: masked control frames of at most 125 bytes (idle_conns sends
      // nothing else). Only their boundaries matter; a close ends the connection.
      std::string_view data(in, static_cast<std::size_t>(got));
      if (!c.in.empty()) {
        c.in.append(data);
        data = c.in;
      }
      std::size_t pos = 0;
      bool closed = false;
      while (data.size() - pos >= 2) {
        const auto b0 = static_cast<unsigned char>(data[pos]);
        const auto b1 = static_cast<unsigned char>(data[pos + 1]);
        const std::size_t len = b1 & 0x7f;
        if (len > 125 || !(b1 & 0x80)) {  // not what an idle client sends
          std::fprintf(stderr, "raw_heartbeat: unexpected frame (0x%02x 0x%02x)\n", b0, b1);
          close_conn(fd);
          closed = true;
          break;
        }
        if (data.size() - pos < 2 + 4 + len) break;
        pos += 2 + 4 + len;
        if ((b0 & 0x0f) == 0x8) {  // close: answer 1000, then close the TCP connection
          const unsigned char bye[4] = {0x88, 2, 0x03, 0xe8};
          send(fd, bye, sizeof bye, MSG_NOSIGNAL);
          close_conn(fd);
          closed = true;
          break;
        }
      }
      if (closed) continue;
      c.in = std::string(data.substr(pos));
    }
  }
}
