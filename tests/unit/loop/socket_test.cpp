// Socket helper tests on the loopback interface only.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <string>

#include "loop/socket.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

namespace tether::loop {
namespace {

// Bounded wait (poll with a timeout), not a sleep.
bool wait_for(int fd, short events, int timeout_ms = 5000) {
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, timeout_ms) == 1;
}

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { close_fd(fd_); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void reset(int fd) {
    close_fd(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

struct Connected {
  Fd listener, client, server;
  PeerAddress accepted;
  std::string accepted_peer;  // accepted.str()
};

// Listens on `listen_host`, connects to it by `connect_host` and accepts (fatal gtest failures
// otherwise).
void connect_pair(const std::string& listen_host, Connected& c,
                  const std::string& connect_host = {}) {
  std::error_code ec;
  c.listener.reset(listen_tcp(ListenOptions{listen_host, 0, false, 16}, ec));
  ASSERT_GE(c.listener.get(), 0) << ec.message();
  const uint16_t port = local_port(c.listener.get());
  ASSERT_NE(port, 0);
  c.client.reset(connect_tcp(connect_host.empty() ? listen_host : connect_host, port, ec));
  ASSERT_GE(c.client.get(), 0) << ec.message();
  ASSERT_TRUE(wait_for(c.client.get(), POLLOUT));
  EXPECT_FALSE(connect_result(c.client.get()));
  ASSERT_TRUE(wait_for(c.listener.get(), POLLIN));
  c.server.reset(accept_tcp(c.listener.get(), c.accepted, ec));
  ASSERT_GE(c.server.get(), 0) << ec.message();
  c.accepted_peer = c.accepted.str();
}

TEST(Socket, ListenConnectAcceptExchange) {
  Connected c;
  connect_pair("127.0.0.1", c);
  if (HasFatalFailure()) return;
  const uint16_t client_port = local_port(c.client.get());
  EXPECT_EQ(c.accepted_peer, "127.0.0.1:" + std::to_string(client_port));
  EXPECT_EQ(c.accepted.ip(), "127.0.0.1");
  EXPECT_EQ(peer_address(c.server.get()), c.accepted_peer);
  EXPECT_EQ(peer_address(c.client.get()),
            "127.0.0.1:" + std::to_string(local_port(c.listener.get())));

  ASSERT_EQ(send(c.client.get(), "ping", 4, MSG_NOSIGNAL), 4);
  ASSERT_TRUE(wait_for(c.server.get(), POLLIN));
  char buf[16];
  ASSERT_EQ(recv(c.server.get(), buf, sizeof buf, 0), 4);
  EXPECT_EQ(std::string(buf, 4), "ping");
  ASSERT_EQ(send(c.server.get(), "pong!", 5, MSG_NOSIGNAL), 5);
  ASSERT_TRUE(wait_for(c.client.get(), POLLIN));
  ASSERT_EQ(recv(c.client.get(), buf, sizeof buf, 0), 5);
  EXPECT_EQ(std::string(buf, 5), "pong!");
}

TEST(Socket, DescriptorFlags) {
  Connected c;
  connect_pair("127.0.0.1", c);
  if (HasFatalFailure()) return;
  for (int fd : {c.listener.get(), c.client.get(), c.server.get()}) {
    EXPECT_TRUE(fcntl(fd, F_GETFL) & O_NONBLOCK) << fd;
    EXPECT_TRUE(fcntl(fd, F_GETFD) & FD_CLOEXEC) << fd;
  }
  auto nodelay = [](int fd) {
    int v = 0;
    socklen_t len = sizeof v;
    EXPECT_EQ(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len), 0);
    return v != 0;
  };
  EXPECT_TRUE(nodelay(c.client.get()));
  EXPECT_TRUE(nodelay(c.server.get()));
  set_nodelay(c.server.get(), false);
  EXPECT_FALSE(nodelay(c.server.get()));
}

TEST(Socket, AcceptWithNothingPendingWouldBlock) {
  std::error_code ec;
  Fd listener(listen_tcp(ListenOptions{}, ec));
  ASSERT_GE(listener.get(), 0) << ec.message();
  PeerAddress peer;
  EXPECT_EQ(accept_tcp(listener.get(), peer, ec), -1);
  EXPECT_EQ(ec, std::errc::operation_would_block);
}

TEST(Socket, ReusePortSharesAPort) {
  std::error_code ec;
  Fd first(listen_tcp(ListenOptions{"127.0.0.1", 0, true, 16}, ec));
  ASSERT_GE(first.get(), 0) << ec.message();
  const uint16_t port = local_port(first.get());
  Fd second(listen_tcp(ListenOptions{"127.0.0.1", port, true, 16}, ec));
  EXPECT_GE(second.get(), 0) << ec.message();
  EXPECT_EQ(local_port(second.get()), port);
  // Without SO_REUSEPORT on the newcomer the port is taken.
  Fd third(listen_tcp(ListenOptions{"127.0.0.1", port, false, 16}, ec));
  EXPECT_EQ(third.get(), -1);
  EXPECT_EQ(ec, std::errc::address_in_use);
}

TEST(Socket, ConnectToClosedPortIsRefused) {
  std::error_code ec;
  uint16_t port = 0;
  {
    Fd listener(listen_tcp(ListenOptions{}, ec));
    ASSERT_GE(listener.get(), 0);
    port = local_port(listener.get());
  }
  Fd client(connect_tcp("127.0.0.1", port, ec));
  if (client.get() < 0) {
    EXPECT_EQ(ec, std::errc::connection_refused);
    return;
  }
  ASSERT_TRUE(wait_for(client.get(), POLLOUT));
  EXPECT_EQ(connect_result(client.get()), std::errc::connection_refused);
}

// RFC 6761 §6.3: "localhost" and every name under it are the loopback addresses, resolved by
// connect_tcp itself (a bare chroot has no /etc/hosts, and "*.localhost" is in no hosts file);
// IPv4 is tried first because the default listener is IPv4-only while ::1 may come first.
TEST(Socket, LocalhostNamesAreLoopbackWithoutTheResolver) {
  for (const char* name : {"localhost", "LocalHost", "app.localhost", "a.b.localhost"}) {
    SCOPED_TRACE(name);
    Connected c;
    connect_pair("127.0.0.1", c, name);
    if (HasFatalFailure()) return;
    EXPECT_EQ(peer_address(c.client.get()),
              "127.0.0.1:" + std::to_string(local_port(c.listener.get())));
  }
  std::error_code ec;
  EXPECT_LT(connect_tcp("notlocalhost.invalid", 80, ec), 0);  // not a localhost name
}

TEST(Socket, Ipv6LoopbackFormatting) {
  std::error_code ec;
  Fd probe(listen_tcp(ListenOptions{"::1", 0, false, 16}, ec));
  if (probe.get() < 0) GTEST_SKIP() << "no IPv6 loopback: " << ec.message();
  Connected c;
  connect_pair("::1", c);
  if (HasFatalFailure()) return;
  EXPECT_EQ(c.accepted_peer, "[::1]:" + std::to_string(local_port(c.client.get())));
  EXPECT_EQ(c.accepted.ip(), "::1");
  EXPECT_EQ(peer_address(c.client.get()), "[::1]:" + std::to_string(local_port(c.listener.get())));
}

// The binary form a server keeps per connection prints back as accept's text did.
sockaddr_storage make_addr(int family, const char* ip, uint16_t port) {
  sockaddr_storage ss{};
  if (family == AF_INET) {
    auto& sin = reinterpret_cast<sockaddr_in&>(ss);
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    EXPECT_EQ(inet_pton(AF_INET, ip, &sin.sin_addr), 1);
  } else if (family == AF_INET6) {
    auto& sin6 = reinterpret_cast<sockaddr_in6&>(ss);
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(port);
    EXPECT_EQ(inet_pton(AF_INET6, ip, &sin6.sin6_addr), 1);
  } else {
    ss.ss_family = static_cast<sa_family_t>(family);
  }
  return ss;
}

TEST(PeerAddress, Ipv4AndIpv6PrintAsAcceptedText) {
  const PeerAddress v4(make_addr(AF_INET, "127.0.0.1", 50312));
  EXPECT_EQ(v4.str(), "127.0.0.1:50312");
  EXPECT_EQ(v4.ip(), "127.0.0.1");
  const PeerAddress v6(make_addr(AF_INET6, "2001:db8::1", 443));
  EXPECT_EQ(v6.str(), "[2001:db8::1]:443");
  EXPECT_EQ(v6.ip(), "2001:db8::1");
  EXPECT_EQ(PeerAddress(make_addr(AF_INET6, "::1", 0)).str(), "[::1]:0");
  EXPECT_EQ(PeerAddress(make_addr(AF_INET6, "::ffff:1.2.3.4", 80)).str(), "[::ffff:1.2.3.4]:80");
  EXPECT_EQ(PeerAddress(make_addr(AF_INET, "10.0.0.255", 65535)).str(), "10.0.0.255:65535");
}

TEST(PeerAddress, OtherFamiliesAreEmpty) {
  for (int family : {AF_UNIX, AF_UNSPEC}) {
    const PeerAddress p(make_addr(family, nullptr, 0));
    EXPECT_EQ(p.str(), "") << family;
    EXPECT_EQ(p.ip(), "") << family;
  }
  EXPECT_EQ(PeerAddress().str(), "");
}

}  // namespace
}  // namespace tether::loop
