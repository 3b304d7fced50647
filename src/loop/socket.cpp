#include "loop/socket.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

namespace tether::loop {

namespace {

std::error_code last_error() { return {errno, std::system_category()}; }

// getaddrinfo reports its own error space; keep its messages instead of flattening to errno.
class GaiCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "getaddrinfo"; }
  std::string message(int code) const override { return gai_strerror(code); }
};

std::error_code gai_error(int code) {
  if (code == EAI_SYSTEM) return last_error();
  static const GaiCategory category;
  return {code, category};
}

struct AddrInfoFree {
  void operator()(addrinfo* ai) const { freeaddrinfo(ai); }
};
using AddrInfoPtr = std::unique_ptr<addrinfo, AddrInfoFree>;

AddrInfoPtr resolve(const std::string& host, uint16_t port, bool passive, std::error_code& ec) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  const std::string service = std::to_string(port);
  addrinfo* res = nullptr;
  // RFC 6761 §6.3: "localhost" and names under it are the loopback addresses, whatever the
  // resolver says (a minimal system may have no /etc/hosts): getaddrinfo with no host and no
  // AI_PASSIVE gives exactly those.
  std::string_view h = host;
  if (h.size() >= 9 && strncasecmp(h.data() + h.size() - 9, "localhost", 9) == 0 &&
      (h.size() == 9 || h[h.size() - 10] == '.')) {
    hints.ai_flags = AI_NUMERICSERV;
    h = {};
  } else if (h.empty()) {
    h = {};  // with AI_PASSIVE: the wildcard address
  }
  const int rc = getaddrinfo(h.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &res);
  if (rc != 0) {
    ec = gai_error(rc);
    return nullptr;
  }
  return AddrInfoPtr(res);
}

bool set_int_opt(int fd, int level, int opt, int value) {
  return setsockopt(fd, level, opt, &value, sizeof value) == 0;
}

}  // namespace

int listen_tcp(const ListenOptions& opts, std::error_code& ec) {
  ec.clear();
  AddrInfoPtr res = resolve(opts.host, opts.port, true, ec);
  if (!res) return -1;
  ec = std::make_error_code(std::errc::address_not_available);
  for (const addrinfo* ai = res.get(); ai != nullptr; ai = ai->ai_next) {
    const int fd =
        socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      ec = last_error();
      continue;
    }
    // SO_REUSEADDR always: a restarted server must not wait out TIME_WAIT on its port.
    const bool ok = set_int_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1) &&
                    (!opts.reuse_port || set_int_opt(fd, SOL_SOCKET, SO_REUSEPORT, 1)) &&
                    bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, opts.backlog) == 0;
    if (ok) {
      ec.clear();
      return fd;
    }
    ec = last_error();
    ::close(fd);
  }
  return -1;
}

PeerAddress::PeerAddress(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) {
    const auto& sin = reinterpret_cast<const sockaddr_in&>(ss);
    std::memcpy(addr_, &sin.sin_addr, 4);
    port_ = ntohs(sin.sin_port);
    family_ = 4;
  } else if (ss.ss_family == AF_INET6) {
    const auto& sin6 = reinterpret_cast<const sockaddr_in6&>(ss);
    std::memcpy(addr_, &sin6.sin6_addr, 16);
    port_ = ntohs(sin6.sin6_port);
    family_ = 6;
  }
}

std::string PeerAddress::ip() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family_ == 0 ||
      inet_ntop(family_ == 4 ? AF_INET : AF_INET6, addr_, buf, sizeof buf) == nullptr)
    return {};
  return buf;
}

std::string PeerAddress::str() const {
  if (family_ == 0) return {};
  std::string out;
  if (family_ == 6) out.push_back('[');
  out.append(ip());
  if (family_ == 6) out.push_back(']');
  out.push_back(':');
  out.append(std::to_string(port_));
  return out;
}

int accept_tcp(int listen_fd, PeerAddress& peer, std::error_code& ec) {
  ec.clear();
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  int fd = -1;
  do {
    fd = accept4(listen_fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    ec = (errno == EAGAIN || errno == EWOULDBLOCK)
             ? std::make_error_code(std::errc::operation_would_block)
             : last_error();
    return -1;
  }
  set_nodelay(fd, true);
  peer = PeerAddress(ss);
  return fd;
}

int connect_tcp(const std::string& host, uint16_t port, std::error_code& ec) {
  ec.clear();
  AddrInfoPtr res = resolve(host, port, false, ec);
  if (!res) return -1;
  ec = std::make_error_code(std::errc::address_not_available);
  // Only an immediate failure moves on to the next address; once a connect is in progress the
  // caller owns the outcome (connect_result after EPOLLOUT). With no asynchronous fallback,
  // IPv4 goes first: "localhost" often lists ::1 first while servers (ours by default) listen
  // on 127.0.0.1.
  std::vector<const addrinfo*> order;
  for (const addrinfo* ai = res.get(); ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family == AF_INET) order.push_back(ai);
  }
  for (const addrinfo* ai = res.get(); ai != nullptr; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET) order.push_back(ai);
  }
  for (const addrinfo* ai : order) {
    const int fd =
        socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      ec = last_error();
      continue;
    }
    set_nodelay(fd, true);
    // EINTR on a non-blocking connect also leaves it completing in the background.
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS || errno == EINTR) {
      ec.clear();
      return fd;
    }
    ec = last_error();
    ::close(fd);
  }
  return -1;
}

std::error_code connect_result(int fd) {
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return last_error();
  if (err != 0) return {err, std::system_category()};
  return {};
}

uint16_t local_port(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(ss).sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(ss).sin6_port);
  return 0;
}

std::string peer_address(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {};
  return PeerAddress(ss).str();
}

void set_nodelay(int fd, bool on) { set_int_opt(fd, IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0); }

void close_fd(int fd) {
  // Never retried on EINTR: on Linux the descriptor is released regardless, and a retry could
  // close a descriptor another thread has just been given.
  if (fd >= 0) ::close(fd);
}

}  // namespace tether::loop
