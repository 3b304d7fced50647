// The listening socket and epoll set the raw peers (raw_echo, raw_heartbeat) start from:
// non-blocking, close-on-exec, SO_REUSEADDR (and SO_REUSEPORT when asked), bound to 127.0.0.1.
#pragma once
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>

namespace bench_peers {

struct Listener {
  int fd = -1;                   // the listening socket
  int epoll = -1;                // an epoll set holding it (EPOLLIN, data.fd = fd)
  int port = 0;                  // the bound port (the one the kernel chose for port 0)
  const char* failed = nullptr;  // the call that failed, when fd or epoll is -1 (errno set)
};

inline Listener listen_loopback(int port, bool reuseport = false) {
  Listener l;
  l.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (l.fd < 0) return l.failed = "socket", l;
  int one = 1;
  setsockopt(l.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuseport) setsockopt(l.fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(l.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return l.failed = "bind", l;
  if (listen(l.fd, 4096) != 0) return l.failed = "listen", l;
  socklen_t alen = sizeof addr;
  getsockname(l.fd, reinterpret_cast<sockaddr*>(&addr), &alen);
  l.port = ntohs(addr.sin_port);
  l.epoll = epoll_create1(EPOLL_CLOEXEC);
  if (l.epoll < 0) return l.failed = "epoll_create1", l;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = l.fd;
  epoll_ctl(l.epoll, EPOLL_CTL_ADD, l.fd, &ev);
  return l;
}

}  // namespace bench_peers
