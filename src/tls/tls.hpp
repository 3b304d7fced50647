// TLS as a sans-I/O byte-transforming layer (OpenSSL 3 underneath, not exposed here).
//
// A Session turns ciphertext from the socket into plaintext for the protocol layer and plaintext
// from the protocol layer into ciphertext for the socket. It never touches a socket, a clock or
// a thread, and knows nothing about HTTP or WebSocket; the caller moves the bytes.
//
//   std::string err;
//   auto ctx = tls::Context::client("", /*verify=*/true, err);  // null + err on failure
//   tls::Session tls(ctx, /*server=*/false, "example.com");     // ClientHello now in pending()
//   tls.write(upgrade_request);                                 // kept until the handshake ends
//
// Driving it from an event loop (WsStream's is edge-triggered: read until a short read or EAGAIN):
//   readable: n = recv(fd, buf);  n == 0 is TCP EOF: orderly only if tls.peer_closed()
//             tls.feed({buf, n});
//             while (size_t m = tls.read(plain)) protocol.receive({plain.data(), m});
//             if (tls.peer_closed()) -> the peer's data ended cleanly (close_notify)
//             if (tls.failed()) -> log tls.error(), flush once (the alert), close
//             flush: read() also produces bytes to send (handshake flights, queued writes)
//   sending:  tls.write(bytes), then flush. write() never asks the caller to retry: when
//             OpenSSL needs to read first, the bytes wait inside and a later read() sends them.
//   flush:    while (!tls.pending().empty()) { k = send(fd, pending()); on EAGAIN arm
//             EPOLLOUT and stop; tls.consume(k); }   pending().size() is the backpressure.
//   writable: flush; disarm EPOLLOUT once pending() is empty.
//   closing:  tls.shutdown(); flush; then close the socket (waiting for the peer's
//             close_notify is not required, RFC 8446 §6.1).
//
// Errors never throw: a failure sets failed() and error() (OpenSSL's reason text).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

struct ssl_ctx_st;  // SSL_CTX, kept out of this header (DESIGN: no OpenSSL headers leak)

namespace tether::tls {

// One per server or client configuration; shared by every Session made from it (SSL_CTX is
// safe to share between threads once configured). Both roles require TLS 1.2 or later.
class Context {
 public:
  // Server: `cert_file` is a PEM chain, leaf first then intermediates (sent to clients as is);
  // `key_file` the PEM private key, checked to match the leaf. ALPN selects "http/1.1" when
  // offered; a client that offers ALPN without it gets a fatal no_application_protocol alert
  // (RFC 7301 §3.2). Returns null and sets `error` on failure, naming the file and giving
  // OpenSSL's reason: "private key /etc/k.pem: key values mismatch".
  static std::shared_ptr<Context> server(std::string_view cert_file, std::string_view key_file,
                                         std::string& error);
  // Client: offers ALPN "http/1.1". With `verify`, the peer chain must verify against
  // `ca_file` (PEM bundle) or, when empty, the system default trust store, and the Session's
  // host must match the certificate (RFC 6125). Returns null and sets `error` on failure.
  static std::shared_ptr<Context> client(std::string_view ca_file, bool verify, std::string& error);

  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  bool is_server() const { return server_; }
  bool verify() const { return verify_; }
  // Escape hatch for tuning not covered here (cipher lists, max version in tests). Configure
  // before the first Session is made from it.
  ssl_ctx_st* native() const { return ctx_; }

 private:
  Context(ssl_ctx_st* ctx, bool server, bool verify)
      : ctx_(ctx), server_(server), verify_(verify) {}

  ssl_ctx_st* ctx_;
  bool server_;
  bool verify_;
};

// One per connection, used by one thread at a time. Movable (a moved-from Session may only be
// destroyed or assigned to), not copyable. Peer input never throws; failures set failed().
class Session {
 public:
  // `server` must match how `ctx` was made. Client role: `host` (a DNS name, or an IPv4/IPv6
  // literal, brackets allowed) is sent as SNI unless it is an IP literal (RFC 6066 §3) and, when
  // the context verifies, is what the certificate must match. An empty host skips both (the
  // chain is still verified). Server role: `host` is ignored.
  Session(std::shared_ptr<Context> ctx, bool server, std::string_view host = {});
  ~Session();
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // --- ciphertext in -> plaintext out
  // Buffers ciphertext received from the peer. False once failed().
  bool feed(std::span<const uint8_t> ciphertext);
  // Drives the handshake and decrypts into `out`: returns the plaintext bytes written, 0 when
  // nothing is available yet (more ciphertext needed), the peer closed (peer_closed()) or the
  // session failed (failed()). At most one record (16 KiB) per call: call until it returns 0
  // after every feed(), into successive offsets to batch. May add bytes to
  // pending() (handshake flights, alerts, TLS 1.3 key-update replies, queued writes).
  std::size_t read(std::span<uint8_t> out);

  // --- plaintext in -> ciphertext out
  // Encrypts all of `plaintext` into pending(). Before the handshake completes the plaintext is
  // kept and encrypted once it does. False (nothing taken) when failed() or after shutdown().
  bool write(std::span<const uint8_t> plaintext);
  // Ciphertext waiting for the socket, oldest first; valid until the next non-const call.
  std::span<const uint8_t> pending() const;
  // Drops the first `n` bytes of pending() (what the socket accepted).
  void consume(std::size_t n);

  // --- state
  bool handshake_done() const;
  bool failed() const;
  const std::string& error() const;
  // Queues close_notify (RFC 8446 §6.1) into pending(); further write()s are refused. Before the
  // handshake completes it is deferred until the handshake and queued writes are done.
  void shutdown();
  // The peer sent close_notify: an orderly end of its data (a TCP EOF without it is a
  // truncation, RFC 8446 §6.1). read() returns 0 from then on.
  bool peer_closed() const;
  // Negotiated ALPN protocol ("http/1.1"), empty when none.
  std::string_view alpn() const;
  // Server role: the SNI host name the client sent, empty when none.
  std::string_view server_name() const;
  // "TLSv1.3", "TLSv1.2"; meaningful once handshake_done().
  std::string_view protocol_version() const;

  struct Impl;  // public only so the BIO callbacks in session.cpp can name it

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace tether::tls
