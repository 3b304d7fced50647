// loadgen: the closed-loop echo load generator of bench/compare.py, for WebSocket servers and
// for the raw TCP ceiling, with one code path for both.
//
//   loadgen --port P [--host 127.0.0.1] [--raw] [--connections 100] [--size 16] [--pipeline 16]
//           [--duration 5] [--warmup 1] [--server-pid PID] [--server-cpu N]
//
// Opens N connections (WebSocket: HTTP/1.1 upgrade to "/"; --raw: plain TCP), then keeps
// `pipeline` messages of `size` bytes in flight on each: a new message goes out only when one
// comes back. WebSocket messages are binary frames, masked as RFC 6455 5.3 requires of a
// client; --raw sends the same number of bytes per message with no framing, and counts a
// message each time `size` bytes have come back. After --warmup seconds it measures for
// --duration seconds, then prints one JSON line:
//   msgs_per_sec, mb_per_sec (payload bytes echoed, 10^6 B/s), messages, duration_s,
//   p50_us / p99_us / p999_us (round trip from queueing the message to receiving its echo),
//   client_cpu_s (this process), server_cpu_s (utime+stime of --server-pid from /proc over the
//   measured window, -1 without it), machine_busy_s (all CPUs' user+nice+system time from
//   /proc/stat over the window: minus server and client, what other processes used),
//   server_cpu_softirq_s (softirq time of CPU --server-cpu over the window, -1 without it),
//   connections, size, pipeline, mode.
//
// Why not `tether bench`: the ceiling needs a raw TCP client, and a ratio to it is only fair
// when both sides of the ratio are driven by the same client loop. This one is one thread,
// one level-triggered epoll, one recv per readable socket per wakeup and one writev of all the
// replies due per socket, for every server alike. The frame is built and masked once (one mask
// key for the run): the client's cost per message is a header check and a pointer in a writev.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "metrics/latency_histogram.hpp"

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "loadgen: %s\nusage: loadgen --port P [--host H] [--raw] [--connections N] "
               "[--size BYTES] [--pipeline K] [--duration S] [--warmup S] [--server-pid PID] "
               "[--server-cpu N]\n",
               why.c_str());
  std::exit(2);
}

[[noreturn]] void fail(const std::string& why) {
  std::fprintf(stderr, "loadgen: %s\n", why.c_str());
  std::exit(1);
}

using Histogram = tether::metrics::LatencyHistogram;

struct Conn {
  int fd = -1;
  std::vector<Clock::time_point> sent;  // FIFO ring of queueing times (echo keeps order)
  std::size_t head = 0, count = 0;
  // outgoing: `out_frames` whole frames still to write, the first from `out_off`
  std::size_t out_frames = 0, out_off = 0;
  bool want_out = false;
  // incoming, WebSocket: bytes of a partial header or control frame; payload left to skip
  std::string carry;
  uint64_t skip = 0;
  bool skip_ends_message = false;
  std::string pong;  // pending pong frame bytes (rare: only if the server pings)
  // incoming, raw: bytes of the current record received so far
  uint64_t raw_have = 0;
};

struct Args {
  std::string host = "127.0.0.1";
  int port = 0;
  bool raw = false;
  long connections = 100, size = 16, pipeline = 16;
  double duration = 5, warmup = 1;
  long server_pid = 0;
  int server_cpu = -1;
};

double cpu_seconds_of(long pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const auto p = s.rfind(')');
  if (p == std::string::npos) return -1;
  std::istringstream in(s.substr(p + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {  // field 3 is the state
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// From /proc/stat: all CPUs' user+nice+system time (no irq, softirq or steal), and the softirq time
// of CPU `cpu` (-1: none), in seconds. Loopback receive processing runs as softirq on the CPU that
// sent the data and is charged to no process, so /proc/PID/stat leaves it out.
void proc_stat(int cpu, double& busy_all, double& softirq_cpu) {
  std::ifstream f("/proc/stat");
  std::string line;
  const std::string want = "cpu" + std::to_string(cpu);
  const double tck = static_cast<double>(sysconf(_SC_CLK_TCK));
  busy_all = softirq_cpu = 0;
  while (std::getline(f, line) && line.compare(0, 3, "cpu") == 0) {
    std::istringstream in(line);
    std::string name;
    unsigned long long v[10] = {};
    in >> name;
    for (auto& x : v) in >> x;
    // user nice system idle iowait irq softirq steal guest guest_nice; guest is inside user
    if (name == "cpu") busy_all = static_cast<double>(v[0] + v[1] + v[2]) / tck;
    if (name == want) softirq_cpu = static_cast<double>(v[6]) / tck;
  }
}

double self_cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

std::string ws_frame(const std::string& payload, uint8_t opcode, uint32_t mask_seed) {
  std::string f;
  f.push_back(static_cast<char>(0x80 | opcode));
  const uint64_t n = payload.size();
  if (n < 126) {
    f.push_back(static_cast<char>(0x80 | n));
  } else if (n < 65536) {
    f.push_back(static_cast<char>(0x80 | 126));
    f.push_back(static_cast<char>(n >> 8));
    f.push_back(static_cast<char>(n & 0xff));
  } else {
    f.push_back(static_cast<char>(0x80 | 127));
    for (int i = 7; i >= 0; --i) f.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  }
  const char key[4] = {static_cast<char>(mask_seed >> 24), static_cast<char>(mask_seed >> 16),
                       static_cast<char>(mask_seed >> 8), static_cast<char>(mask_seed)};
  f.append(key, 4);
  for (std::size_t i = 0; i < payload.size(); ++i) f.push_back(payload[i] ^ key[i % 4]);
  return f;
}

int connect_one(const Args& a) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail(std::string("socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(a.port));
  if (inet_pton(AF_INET, a.host.c_str(), &addr.sin_addr) != 1)
    usage("--host must be an IPv4 address");
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    fail("connect " + a.host + ":" + std::to_string(a.port) + ": " + std::strerror(errno));
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

// RFC 6455 4.1 client handshake, blocking; returns bytes received past the response (if any).
std::string handshake(int fd, const Args& a, std::mt19937& rng) {
  static const char* b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string key;
  for (int i = 0; i < 22; ++i) key.push_back(b64[rng() % 64]);
  key[21] = 'A';  // 16 random bytes encode to 22 characters, the last one of A/Q/g/w
  key += "==";
  const std::string req =
      "GET / HTTP/1.1\r\nHost: " + a.host + ":" + std::to_string(a.port) +
      "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key +
      "\r\nSec-WebSocket-Version: 13\r\n\r\n";
  if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size()))
    fail(std::string("handshake send: ") + std::strerror(errno));
  std::string resp;
  char buf[4096];
  std::size_t end = std::string::npos;
  while ((end = resp.find("\r\n\r\n")) == std::string::npos) {
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0)
      fail(std::string("handshake: no response: ") + (n == 0 ? "EOF" : std::strerror(errno)));
    resp.append(buf, static_cast<std::size_t>(n));
    if (resp.size() > 65536) fail("handshake: response too long");
  }
  if (resp.compare(0, 12, "HTTP/1.1 101") != 0)
    fail("handshake refused: " + resp.substr(0, resp.find("\r\n")));
  return resp.substr(end + 4);
}

void set_events(int ep, Conn& c, bool out) {
  if (c.want_out == out) return;
  c.want_out = out;
  epoll_event ev{};
  ev.events = EPOLLIN | (out ? EPOLLOUT : 0u);
  ev.data.ptr = &c;
  epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string f = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) usage(f + " needs a value");
      return argv[++i];
    };
    if (f == "--host")
      a.host = val();
    else if (f == "--port")
      a.port = static_cast<int>(bench::parse_count(f, val(), 1, 65535, usage));
    else if (f == "--raw")
      a.raw = true;
    else if (f == "--connections")
      a.connections = bench::parse_count(f, val(), 1, 20000, usage);
    else if (f == "--size")
      a.size = bench::parse_count(f, val(), 1, 64L << 20, usage);
    else if (f == "--pipeline")
      a.pipeline = bench::parse_count(f, val(), 1, 4096, usage);
    else if (f == "--duration")
      a.duration = std::atof(val().c_str());
    else if (f == "--warmup")
      a.warmup = std::atof(val().c_str());
    else if (f == "--server-cpu")
      a.server_cpu = static_cast<int>(bench::parse_count(f, val(), 0, 4095, usage));
    else if (f == "--server-pid")
      a.server_pid = bench::parse_count(f, val(), 1, 1L << 30, usage);
    else
      usage("unknown argument '" + f + "'");
  }
  if (a.port == 0) usage("--port is required");
  if (!(a.duration > 0) || a.warmup < 0) usage("--duration must be > 0 and --warmup >= 0");
  std::signal(SIGPIPE, SIG_IGN);
  std::signal(SIGINT, bench::on_signal);
  std::signal(SIGTERM, bench::on_signal);
  bench::raise_fd_limit("loadgen", static_cast<rlim_t>(a.connections + 64));

  std::mt19937 rng(std::random_device{}());
  std::string payload(static_cast<std::size_t>(a.size), '\0');
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>('a' + i % 26);
  const std::string frame = a.raw ? payload : ws_frame(payload, 0x2, rng() | 1u);
  const uint64_t size = static_cast<uint64_t>(a.size);

  const int ep = epoll_create1(EPOLL_CLOEXEC);
  std::vector<Conn> conns(static_cast<std::size_t>(a.connections));
  std::vector<std::string> early(conns.size());
  for (std::size_t i = 0; i < conns.size(); ++i) {
    Conn& c = conns[i];
    c.fd = connect_one(a);
    if (!a.raw) early[i] = handshake(c.fd, a, rng);
    int fl = 1;
    ioctl(c.fd, FIONBIO, &fl);
    c.sent.resize(static_cast<std::size_t>(a.pipeline));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = &c;
    epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
  }
  for (std::size_t i = 0; i < conns.size(); ++i)
    if (!early[i].empty()) fail("server sent data right after the handshake");

  Histogram hist;
  uint64_t done = 0;
  bool measuring = false;
  std::vector<char> rbuf(256 * 1024 + 256);
  std::vector<iovec> iov(64);

  // Writes a pending pong; false when the socket is full. Only called between whole frames.
  auto send_pong = [&](Conn& c) {
    while (!c.pong.empty()) {
      const ssize_t n = send(c.fd, c.pong.data(), c.pong.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return false;
        fail(std::string("send: ") + std::strerror(errno));
      }
      c.pong.erase(0, static_cast<std::size_t>(n));
    }
    return true;
  };
  // Writes what is due on c: out_frames copies of the frame, and a pong (if the server pinged)
  // at a frame boundary, never inside a frame.
  auto flush = [&](Conn& c) {
    if (c.out_off == 0 && !send_pong(c)) return set_events(ep, c, true);
    while (c.out_frames > 0) {
      std::size_t k = 0;
      for (; k < iov.size() && k < c.out_frames; ++k) {
        const std::size_t off = k == 0 ? c.out_off : 0;
        iov[k].iov_base = const_cast<char*>(frame.data() + off);
        iov[k].iov_len = frame.size() - off;
      }
      ssize_t n = writev(c.fd, iov.data(), static_cast<int>(k));
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return set_events(ep, c, true);
        fail(std::string("writev: ") + std::strerror(errno));
      }
      auto left = static_cast<std::size_t>(n);
      while (left > 0) {
        const std::size_t rest = frame.size() - c.out_off;
        if (left >= rest) {
          left -= rest;
          c.out_off = 0;
          --c.out_frames;
        } else {
          c.out_off += left;
          left = 0;
        }
      }
    }
    if (!send_pong(c)) return set_events(ep, c, true);
    set_events(ep, c, false);
  };
  auto queue_message = [&](Conn& c, Clock::time_point now) {
    c.sent[(c.head + c.count++) % c.sent.size()] = now;
    ++c.out_frames;
  };
  auto on_echo = [&](Conn& c, Clock::time_point now) {
    if (c.count == 0) fail("server sent a message that was never sent to it");
    const auto t0 = c.sent[c.head];
    c.head = (c.head + 1) % c.sent.size();
    --c.count;
    if (measuring) {
      hist.add(static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(now - t0).count()));
      ++done;
    }
    queue_message(c, now);
  };
  // WebSocket frames from the server (RFC 6455 5.2): unmasked; data frames are counted when the
  // last byte of a FIN frame arrives and their payloads are skipped without being copied.
  auto parse_ws = [&](Conn& c, const char* p, std::size_t n, Clock::time_point now) {
    std::size_t pos = 0;
    for (;;) {
      if (c.skip > 0) {
        const auto take = static_cast<std::size_t>(std::min<uint64_t>(c.skip, n - pos));
        pos += take;
        c.skip -= take;
        if (c.skip > 0) {
          c.carry.clear();
          return;
        }
        if (c.skip_ends_message) on_echo(c, now);
      }
      const std::size_t avail = n - pos;
      if (avail < 2) break;
      const auto b0 = static_cast<uint8_t>(p[pos]), b1 = static_cast<uint8_t>(p[pos + 1]);
      std::size_t hdr = 2;
      uint64_t len = b1 & 0x7f;
      if (len == 126) hdr = 4;
      if (len == 127) hdr = 10;
      if (b1 & 0x80) hdr += 4;
      if (avail < hdr) break;
      if (len == 126)
        len = (static_cast<uint64_t>(static_cast<uint8_t>(p[pos + 2])) << 8) |
              static_cast<uint8_t>(p[pos + 3]);
      if (len == 127) {
        len = 0;
        for (int i = 0; i < 8; ++i) len = (len << 8) | static_cast<uint8_t>(p[pos + 2 + i]);
      }
      const uint8_t op = b0 & 0x0f;
      const bool fin = (b0 & 0x80) != 0;
      if (op >= 0x8) {  // control frame: wait for all of it
        if (avail < hdr + len) break;
        if (op == 0x8) fail("server closed a connection during the run");
        if (op == 0x9) {
          std::string body(p + pos + hdr, static_cast<std::size_t>(len));
          c.pong += ws_frame(body, 0xA, static_cast<uint32_t>(rng()));
        }
        pos += hdr + static_cast<std::size_t>(len);
        continue;
      }
      pos += hdr;
      c.skip = len;
      c.skip_ends_message = fin;
      if (len == 0) {
        if (fin) on_echo(c, now);
      }
    }
    c.carry.assign(p + pos, n - pos);
  };

  for (auto& c : conns) {
    const auto now = Clock::now();
    for (long i = 0; i < a.pipeline; ++i) queue_message(c, now);
    flush(c);
  }

  const auto t_start = Clock::now();
  const auto t_measure = t_start + std::chrono::duration_cast<Clock::duration>(
                                       std::chrono::duration<double>(a.warmup));
  const auto t_end = t_measure + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(a.duration));
  double srv0 = 0, srv1 = 0, busy0 = 0, busy1 = 0, self0 = 0, self1 = 0, sirq0 = 0, sirq1 = 0;
  Clock::time_point m0{}, m1{};
  std::vector<epoll_event> events(512);
  for (;;) {
    auto now = Clock::now();
    if (!measuring && now >= t_measure && m0 == Clock::time_point{}) {
      measuring = true;
      m0 = now;
      if (a.server_pid) srv0 = cpu_seconds_of(a.server_pid);
      proc_stat(a.server_cpu, busy0, sirq0);
      self0 = self_cpu_seconds();
    }
    if (measuring && now >= t_end) {
      measuring = false;
      m1 = now;
      if (a.server_pid) srv1 = cpu_seconds_of(a.server_pid);
      proc_stat(a.server_cpu, busy1, sirq1);
      self1 = self_cpu_seconds();
      break;
    }
    if (bench::interrupted) fail("interrupted");
    const auto next = measuring ? t_end : t_measure;
    const int timeout_ms = static_cast<int>(std::max<int64_t>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count() + 1));
    const int ne = epoll_wait(ep, events.data(), static_cast<int>(events.size()), timeout_ms);
    if (ne < 0) {
      if (errno == EINTR) continue;
      fail(std::string("epoll_wait: ") + std::strerror(errno));
    }
    now = Clock::now();
    for (int i = 0; i < ne; ++i) {
      Conn& c = *static_cast<Conn*>(events[i].data.ptr);
      if (events[i].events & EPOLLIN || events[i].events & (EPOLLHUP | EPOLLERR)) {
        const std::size_t keep = c.carry.size();
        if (keep) std::memcpy(rbuf.data(), c.carry.data(), keep);
        const ssize_t got = recv(c.fd, rbuf.data() + keep, rbuf.size() - keep, 0);
        if (got == 0) fail("server closed a connection during the run");
        if (got < 0) {
          if (errno != EAGAIN && errno != EINTR) fail(std::string("recv: ") + std::strerror(errno));
        } else if (a.raw) {
          c.raw_have += static_cast<uint64_t>(got);
          while (c.raw_have >= size) {
            c.raw_have -= size;
            on_echo(c, now);
          }
        } else {
          parse_ws(c, rbuf.data(), keep + static_cast<std::size_t>(got), now);
        }
      }
      if (c.out_frames > 0 || !c.pong.empty()) flush(c);
    }
  }

  const double secs = std::chrono::duration<double>(m1 - m0).count();
  const double rate = static_cast<double>(done) / secs;
  std::printf(
      "{\"mode\":\"%s\",\"connections\":%ld,\"size\":%ld,\"pipeline\":%ld,\"messages\":%llu,"
      "\"duration_s\":%.4f,\"msgs_per_sec\":%.1f,\"mb_per_sec\":%.3f,\"p50_us\":%.2f,"
      "\"p99_us\":%.2f,\"p999_us\":%.2f,\"client_cpu_s\":%.3f,\"server_cpu_s\":%.3f,"
      "\"machine_busy_s\":%.3f,\"server_cpu_softirq_s\":%.3f}\n",
      a.raw ? "raw" : "ws", a.connections, a.size, a.pipeline,
      static_cast<unsigned long long>(done), secs, rate, rate * static_cast<double>(size) / 1e6,
      hist.percentile_us(50), hist.percentile_us(99), hist.percentile_us(99.9), self1 - self0,
      a.server_pid ? srv1 - srv0 : -1.0, busy1 - busy0, a.server_cpu >= 0 ? sirq1 - sirq0 : -1.0);
  std::fflush(stdout);
  for (auto& c : conns) close(c.fd);
  return 0;
}
