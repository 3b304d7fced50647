// wss:// end to end on loopback: the tether client and server over TLS (test PKI generated at run
// time), certificate and hostname verification, the handshake timeout covering TLS, a clean TLS
// shutdown (close_notify before the TCP FIN) and garbage on the TLS port. Every wait is bounded.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "raw_peer.hpp"
#include "tether/client.hpp"
#include "tether/server.hpp"
#include "tls/tls.hpp"
#include "unit/tls/test_certs.hpp"

namespace {

using tether::MessageType;
using namespace std::chrono_literals;

class TlsEchoServer {
 public:
  explicit TlsEchoServer(std::function<void(tether::ServerOptions&)> tweak = {}) {
    const auto& pki = tether::test::test_pki();
    tether::ServerOptions o;
    o.port = 0;
    o.shutdown_timeout = 500ms;
    o.tls.cert_file = pki.server_cert;
    o.tls.key_file = pki.server_key;
    if (tweak) tweak(o);
    server_ = std::make_unique<tether::Server>(o);
    server_->on_message(
        [](tether::Connection& c, std::string_view d, MessageType t) { c.send(d, t); });
    server_->on_error([this](std::string_view e) {
      std::lock_guard lock(mu);
      errors.emplace_back(e);
    });
    EXPECT_FALSE(server_->listen());
    thread_ = std::thread([this] { server_->run(); });
  }
  ~TlsEchoServer() {
    server_->stop();
    thread_.join();
  }
  uint16_t port() const { return server_->port(); }
  bool logged(std::string_view what) {
    std::lock_guard lock(mu);
    for (auto& e : errors)
      if (e.find(what) != std::string::npos) return true;
    return false;
  }
  std::mutex mu;
  std::vector<std::string> errors;

 private:
  std::unique_ptr<tether::Server> server_;
  std::thread thread_;
};

struct ClientRun {
  std::vector<std::string> got;
  tether::CloseInfo close;
  bool opened = false;
};

// One client connection: sends `messages`, closes after the echoes, no reconnect.
ClientRun run_client(const std::string& url, const std::string& ca,
                     const std::vector<std::string>& messages, bool verify = true) {
  tether::ClientOptions o;
  o.url = url;
  o.reconnect = false;
  o.tls_ca_file = ca;
  o.tls_verify = verify;
  tether::Client c(o);
  ClientRun r;
  c.on_open([&] {
    r.opened = true;
    for (auto& m : messages) c.send(m);
    if (messages.empty()) c.close();
  });
  c.on_message([&](std::string_view d, MessageType) {
    r.got.emplace_back(d);
    if (r.got.size() == messages.size()) c.close();
  });
  c.on_close([&](const tether::CloseInfo& i) { r.close = i; });
  c.connect();
  std::thread guard([&c] {
    std::this_thread::sleep_for(5s);  // bound: the run ends long before this
    c.close();
  });
  c.run();
  guard.detach();  // c.run() returned: the close came; the guard's close is then a no-op
  return r;
}

TEST(Tls, ClientAndServerEchoOverWss) {
  TlsEchoServer s;
  const auto& pki = tether::test::test_pki();
  std::vector<std::string> msgs = {"hello", std::string(200000, 'x'), ""};
  // By IP address (a SAN of the test certificate): no test depends on resolving "localhost".
  for (const char* host : {"127.0.0.1"}) {
    SCOPED_TRACE(host);
    auto r = run_client("wss://" + std::string(host) + ":" + std::to_string(s.port()) + "/",
                        pki.ca_cert, msgs);
    EXPECT_TRUE(r.opened);
    EXPECT_EQ(r.got, msgs);
    EXPECT_EQ(r.close.code, 1000);
    EXPECT_TRUE(r.close.was_clean);
  }
}

TEST(Tls, UntrustedServerIsRefusedWithOpenSslsReason) {
  TlsEchoServer s;
  auto r = run_client("wss://127.0.0.1:" + std::to_string(s.port()) + "/", "", {"x"});
  EXPECT_FALSE(r.opened);
  EXPECT_EQ(r.close.cause, tether::Cause::handshake_failed);
  EXPECT_NE(r.close.reason.find("unable to get local issuer certificate"), std::string::npos)
      << r.close.reason;
  // Verification off (tests only) connects to the same server.
  auto insecure = run_client("wss://127.0.0.1:" + std::to_string(s.port()) + "/", "", {"x"}, false);
  EXPECT_TRUE(insecure.opened);
}

// A self-signed certificate naming only "other.example", trusted as its own anchor: reaching
// a server that presents it as 127.0.0.1 must fail the name check although the chain verifies.
struct OtherCert {
  std::string cert, key;
};
const OtherCert& other_cert() {
  static const OtherCert o = [] {
    using namespace tether::test::detail;
    const auto& pki = tether::test::test_pki();
    Key k = make_key();
    Cert c = make_cert("other.example", k.get(), nullptr, nullptr, false, "DNS:other.example");
    return OtherCert{write_pem(pki.dir, "other.pem", c.get()),
                     write_pem(pki.dir, "other.key", nullptr, nullptr, k.get())};
  }();
  return o;
}

TEST(Tls, WrongHostnameIsRefused) {
  TlsEchoServer other([&](tether::ServerOptions& so) {
    so.tls.cert_file = other_cert().cert;
    so.tls.key_file = other_cert().key;
  });
  auto bad =
      run_client("wss://127.0.0.1:" + std::to_string(other.port()) + "/", other_cert().cert, {"x"});
  EXPECT_FALSE(bad.opened);
  EXPECT_EQ(bad.close.cause, tether::Cause::handshake_failed);
  EXPECT_NE(bad.close.reason.find("mismatch"), std::string::npos) << bad.close.reason;
}

// A certificate file holding leaf + intermediate verifies against the root alone.
TEST(Tls, ChainFileVerifiesThroughTheIntermediate) {
  const auto& pki = tether::test::test_pki();
  TlsEchoServer chain([&](tether::ServerOptions& so) {
    so.tls.cert_file = pki.chain_cert;
    so.tls.key_file = pki.chain_key;
  });
  auto good =
      run_client("wss://127.0.0.1:" + std::to_string(chain.port()) + "/", pki.ca_cert, {"y"});
  EXPECT_TRUE(good.opened);
  EXPECT_EQ(good.got, std::vector<std::string>{"y"});
}

TEST(Tls, HandshakeTimeoutCoversTheTlsHandshake) {
  TlsEchoServer s([](tether::ServerOptions& o) { o.handshake_timeout = 300ms; });
  tether_test::RawPeer silent(s.port());  // TCP only: never sends a ClientHello
  ASSERT_TRUE(silent.connected());
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(silent.wait_eof());
  const auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(waited, 250ms);
  EXPECT_LE(waited, 2s);
}

TEST(Tls, PlainHttpOnTheTlsPortFailsAndOthersAreServed) {
  TlsEchoServer s;
  const auto& pki = tether::test::test_pki();
  tether_test::RawPeer plain(s.port());
  plain.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(plain.wait_eof());
  auto r = run_client("wss://127.0.0.1:" + std::to_string(s.port()) + "/", pki.ca_cert, {"ok"});
  EXPECT_EQ(r.got, std::vector<std::string>{"ok"});
  EXPECT_TRUE(s.logged("TLS: "));
}

// The server ends a TLS connection with close_notify before TCP's FIN (RFC 8446 §6.1), after
// the WebSocket closing handshake.
TEST(Tls, ServerSendsCloseNotifyAfterTheClosingHandshake) {
  TlsEchoServer s;
  const auto& pki = tether::test::test_pki();
  std::string err;
  auto ctx = tether::tls::Context::client(pki.ca_cert, true, err);
  ASSERT_TRUE(ctx) << err;
  tether::tls::Session tls(ctx, false, "127.0.0.1");
  tether_test::RawPeer tcp(s.port());
  ASSERT_TRUE(tcp.connected());
  auto pump_out = [&] {
    auto p = tls.pending();
    if (!p.empty()) {
      ASSERT_EQ(::send(tcp.fd(), p.data(), p.size(), MSG_NOSIGNAL), (ssize_t)p.size());
      tls.consume(p.size());
    }
  };
  std::string plain;
  bool eof = false;
  auto pump_in = [&] {
    uint8_t buf[16384];
    ssize_t n = ::recv(tcp.fd(), buf, sizeof buf, 0);
    if (n <= 0) {
      eof = true;
      return;
    }
    tls.feed({buf, static_cast<std::size_t>(n)});
    uint8_t out[16384];
    while (std::size_t m = tls.read(out)) plain.append(reinterpret_cast<char*>(out), m);
    pump_out();
  };
  const std::string req =
      "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  tls.write({reinterpret_cast<const uint8_t*>(req.data()), req.size()});
  pump_out();
  for (int i = 0; i < 50 && plain.find("\r\n\r\n") == std::string::npos && !eof; ++i) pump_in();
  ASSERT_TRUE(plain.starts_with("HTTP/1.1 101")) << plain;
  plain.clear();
  const std::string close = tether_test::frame(0x88, std::string("\x03\xE8", 2));
  tls.write({reinterpret_cast<const uint8_t*>(close.data()), close.size()});
  pump_out();
  for (int i = 0; i < 50 && !eof; ++i) pump_in();
  EXPECT_TRUE(eof);
  EXPECT_EQ(plain.substr(0, 2), std::string("\x88\x02", 2));  // the close frame came back
  EXPECT_TRUE(tls.peer_closed());  // close_notify before the FIN: not a truncation
  EXPECT_FALSE(tls.failed()) << tls.error();
}

TEST(Tls, BadCertificateFilesFailListenWithAReason) {
  const auto& pki = tether::test::test_pki();
  tether::ServerOptions o;
  o.port = 0;
  o.tls.cert_file = pki.server_cert;
  o.tls.key_file = pki.other_key;  // does not match
  tether::Server server(o);
  std::string error;
  server.on_error([&](std::string_view e) { error = e; });
  EXPECT_TRUE(server.listen());
  EXPECT_NE(error.find("TLS: "), std::string::npos) << error;
  EXPECT_NE(error.find("mismatch"), std::string::npos) << error;
}

}  // namespace
