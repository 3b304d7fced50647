// raw_echo: the raw TCP ceiling for bench/compare.py. One epoll loop (or N), level-triggered:
// every byte read from a connection is written straight back. No framing, no parsing, no
// masking: the load generator (bench/loadgen.cpp --raw) sends fixed-size records and counts
// whole records coming back, so the server does the least any echo server can do over TCP.
//
//   raw_echo PORT [THREADS]   listens on 127.0.0.1:PORT; prints nothing but errors; SIGTERM stops
//   it.
//
// THREADS (default 1): that many independent loops, each with its own listener on PORT
// (SO_REUSEPORT, the kernel spreads new connections across them), like `tether serve
// --threads N`; compare.py's multi-core part (W1mc) uses it.
//
// Same socket settings as the WebSocket peers: TCP_NODELAY on every connection. Reads up to
// 64 KiB at a time; when a write is short the rest is kept and reading stops until it drains
// (EPOLLOUT), so a slow reader cannot make the server buffer without bound.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <unordered_map>
#include <vector>

#include "loopback_listener.hpp"

namespace {

constexpr std::size_t kChunk = 64 * 1024;

struct Conn {
  int fd = -1;
  std::vector<char> pending;  // bytes read but not yet written back
  std::size_t off = 0;
};

volatile std::sig_atomic_t stop = 0;
void on_signal(int) { stop = 1; }

void die(const char* what) {
  std::fprintf(stderr, "raw_echo: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

// One loop: its own listener (SO_REUSEPORT when `reuseport`), epoll and connections.
void serve(int port, bool reuseport) {
  const bench_peers::Listener l = bench_peers::listen_loopback(port, reuseport);
  if (l.failed) die(l.failed);
  const int lfd = l.fd;
  const int ep = l.epoll;
  int one = 1;

  std::unordered_map<int, std::unique_ptr<Conn>> conns;
  std::vector<char> buf(kChunk);
  std::vector<epoll_event> events(256);

  auto close_conn = [&](int fd) {
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
    close(fd);
    conns.erase(fd);
  };
  // Writes c.pending from c.off; true when it all went out.
  auto flush = [&](Conn& c) -> int {
    while (c.off < c.pending.size()) {
      const ssize_t n =
          send(c.fd, c.pending.data() + c.off, c.pending.size() - c.off, MSG_NOSIGNAL);
      if (n > 0) {
        c.off += static_cast<std::size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return 0;
      } else {
        return -1;
      }
    }
    c.pending.clear();
    c.off = 0;
    return 1;
  };

  while (!stop) {
    const int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == lfd) {
        for (;;) {
          const int cfd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (cfd < 0) break;
          setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          auto c = std::make_unique<Conn>();
          c->fd = cfd;
          epoll_event cev{};
          cev.events = EPOLLIN | EPOLLRDHUP;
          cev.data.fd = cfd;
          epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &cev);
          conns.emplace(cfd, std::move(c));
        }
        continue;
      }
      auto it = conns.find(fd);
      if (it == conns.end()) continue;
      Conn& c = *it->second;
      if (!c.pending.empty()) {  // EPOLLOUT: drain, then read again
        const int r = flush(c);
        if (r < 0) {
          close_conn(fd);
          continue;
        }
        if (r == 0) continue;
        epoll_event cev{};
        cev.events = EPOLLIN | EPOLLRDHUP;
        cev.data.fd = fd;
        epoll_ctl(ep, EPOLL_CTL_MOD, fd, &cev);
      }
      const ssize_t got = recv(fd, buf.data(), buf.size(), 0);
      if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
        close_conn(fd);
        continue;
      }
      if (got < 0) continue;
      ssize_t sent = send(fd, buf.data(), static_cast<std::size_t>(got), MSG_NOSIGNAL);
      if (sent < 0 && errno != EAGAIN && errno != EINTR) {
        close_conn(fd);
        continue;
      }
      if (sent < 0) sent = 0;
      if (sent < got) {  // keep the rest; wait for EPOLLOUT instead of reading more
        c.pending.assign(buf.data() + sent, buf.data() + got);
        c.off = 0;
        epoll_event cev{};
        cev.events = EPOLLOUT | EPOLLRDHUP;
        cev.data.fd = fd;
        epoll_ctl(ep, EPOLL_CTL_MOD, fd, &cev);
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 && argc != 3) {
    std::fprintf(stderr, "usage: %s PORT [THREADS]\n", argv[0]);
    return 2;
  }
  const int port = std::atoi(argv[1]);
  const int threads = argc == 3 ? std::atoi(argv[2]) : 1;
  if (threads < 1 || threads > 256) {
    std::fprintf(stderr, "raw_echo: THREADS must be 1..256\n");
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);

  // The extra loops block SIGTERM/SIGINT, so the signal always interrupts the main thread's
  // epoll_wait; when its loop ends, returning from main ends the process, extra loops included.
  sigset_t stop_signals, old;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, &old);
  for (int i = 1; i < threads; ++i) std::thread(serve, port, true).detach();
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  serve(port, threads > 1);
  return 0;
}
