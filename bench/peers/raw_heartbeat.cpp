// raw_heartbeat: the raw TCP floor for heartbeats, for bench/idle.sh --floor. It puts on the wire
// exactly the bytes `tether serve --ping-interval I` exchanges with idle connections (a 16-byte
// ping frame out every I per connection, the client's 20-byte pong in) and does nothing else:
// no WebSocket state machine, no liveness bookkeeping, no RTT, no per-connection timer, no
// parsing beyond finding frame boundaries. What it costs a server core is what the kernel charges
// for that traffic on this machine, the least any server can spend on the same heartbeats.
//
//   raw_heartbeat --port 0 --ping-interval 200ms|1s|25s [--tick 10ms]
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
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <sys/epoll.h>
#include <sys/socket.h>
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
  for (int i = 1; i + 1 < argc; i += 2) {
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
  if ((argc - 1) % 2 != 0 || port < 0 || port > 65535 || interval <= 0 || tick <= 0) {
    std::fprintf(stderr, "usage: raw_heartbeat --port P --ping-interval I [--tick T]\n");
    return 2;
  }

  const int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (lfd < 0) die("socket");
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) die("bind");
  if (listen(lfd, 4096) != 0) die("listen");
  socklen_t alen = sizeof addr;
  getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &alen);
  std::printf("listening ws://127.0.0.1:%d/\n", ntohs(addr.sin_port));
  std::fflush(stdout);

  const int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = lfd;
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);

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

  for (;;) {
    int64_t t = now_ms();
    while (!due.empty() && due.front().at <= t) {
      const Due d = due.front();
      due.pop_front();
      Conn& c = conns[static_cast<std::size_t>(d.fd)];
      if (c.gen != d.gen || !c.open) continue;    // closed since
      std::memcpy(ping + 2, &d.at, sizeof d.at);  // some payload; its value does not matter
      if (send(d.fd, ping, sizeof ping, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof ping)) {
        // A full send buffer for 16 bytes means the peer stopped reading: drop it.
        close_conn(d.fd);
        continue;
      }
      due.push_back({round_up(d.at + interval), d.fd, d.gen});
    }
    int timeout = -1;
    if (!due.empty()) timeout = static_cast<int>(std::max<int64_t>(0, due.front().at - t));
    const int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), timeout);
    if (n < 0 && errno != EINTR) die("epoll_wait");
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
      const ssize_t got = recv(fd, buf.data(), buf.size(), 0);
      if (got <= 0) {
        if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        close_conn(fd);
        continue;
      }
      if (!c.open) {  // the upgrade request
        c.in.append(buf.data(), static_cast<std::size_t>(got));
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
      std::string_view data(buf.data(), static_cast<std::size_t>(got));
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
