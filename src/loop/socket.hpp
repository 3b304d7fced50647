// Thin POSIX socket helpers: non-blocking TCP, no WebSocket knowledge.
#pragma once
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <system_error>

namespace tether::loop {

struct ListenOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;        // 0: kernel picks a free port
  bool reuse_port = false;  // SO_REUSEPORT: N loops, N listeners, one port
  int backlog = 1024;
};

// A peer's address and port in 19 bytes (a server keeps one per connection; a string would
// take 32): IPv4 in the first 4 bytes, or IPv6. Any other family (a Unix socket) is the empty
// address.
class PeerAddress {
 public:
  PeerAddress() = default;
  explicit PeerAddress(const sockaddr_storage& ss);
  std::string str() const;  // "127.0.0.1:50312", "[::1]:50312"; "" when empty
  std::string ip() const;   // without the port (and brackets); "" when empty

 private:
  uint8_t addr_[16] = {};
  uint16_t port_ = 0;
  uint8_t family_ = 0;  // 4, 6, or 0 (empty)
};

// Returns a non-blocking listening fd, or -1 with `ec` set.
int listen_tcp(const ListenOptions& opts, std::error_code& ec);
// Accepts one connection (non-blocking, CLOEXEC, TCP_NODELAY set). -1 and ec=would_block when none.
int accept_tcp(int listen_fd, PeerAddress& peer, std::error_code& ec);
// Starts a non-blocking connect to host:port (numeric or resolved with getaddrinfo).
// Returns fd (connect may be in progress: wait for EPOLLOUT then check connect_result).
int connect_tcp(const std::string& host, uint16_t port, std::error_code& ec);
std::error_code connect_result(int fd);  // SO_ERROR after EPOLLOUT
uint16_t local_port(int fd);
std::string peer_address(int fd);  // PeerAddress::str() of getpeername: "127.0.0.1:50312"
void set_nodelay(int fd, bool on);
void close_fd(int fd);

}  // namespace tether::loop
