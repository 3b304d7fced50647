// The server Session resumes sessions from its tickets (RFC 8446 §2.2, RFC 5077) although its
// session cache is off: tickets are stateless. The client here is plain OpenSSL over memory
// BIOs, since tls::Session does not keep sessions (yet); browsers do.
#include "tls/tls.hpp"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>

#include "tls_harness.hpp"

namespace tls_test {
namespace {

struct RawClient {
  SSL* ssl;
  BIO* in = BIO_new(BIO_s_mem());   // ciphertext from the server
  BIO* out = BIO_new(BIO_s_mem());  // ciphertext to the server

  RawClient(SSL_CTX* ctx, SSL_SESSION* resume) : ssl(SSL_new(ctx)) {
    SSL_set_bio(ssl, in, out);
    SSL_set_connect_state(ssl);
    SSL_set_tlsext_host_name(ssl, "localhost");
    SSL_set1_host(ssl, "localhost");
    if (resume != nullptr) SSL_set_session(ssl, resume);
  }
  ~RawClient() { SSL_free(ssl); }

  // Runs the handshake against `server`, then reads so TLS 1.3 tickets are processed.
  void connect(Session& server) {
    std::vector<uint8_t> buf(16384);
    char cbuf[16384];
    for (int i = 0; i < 20; ++i) {
      SSL_do_handshake(ssl);
      if (SSL_is_init_finished(ssl)) SSL_read(ssl, cbuf, sizeof cbuf);
      int n;
      while ((n = BIO_read(out, cbuf, sizeof cbuf)) > 0) {
        server.feed(std::span(reinterpret_cast<const uint8_t*>(cbuf), static_cast<size_t>(n)));
      }
      while (server.read(buf) > 0) {
      }
      auto p = server.pending();
      if (p.empty() && SSL_is_init_finished(ssl) && server.handshake_done()) break;
      BIO_write(in, p.data(), static_cast<int>(p.size()));
      server.consume(p.size());
    }
  }
};

TEST(TlsResumption, ServerResumesFromItsTicketsWithTheCacheOff) {
  for (bool v12 : {false, true}) {
    auto sctx = v12 ? tls12(server_ctx()) : server_ctx();
    auto cctx = client_ctx();
    SSL_SESSION* saved = nullptr;
    {
      RawClient first(cctx->native(), nullptr);
      Session server(sctx, true);
      first.connect(server);
      ASSERT_TRUE(server.handshake_done()) << server.error();
      EXPECT_FALSE(SSL_session_reused(first.ssl));
      saved = SSL_get1_session(first.ssl);
      ASSERT_NE(saved, nullptr);
      // Without close_notify OpenSSL marks the session not resumable when the SSL is freed
      // (a truncated connection must not be resumed, RFC 5246 §7.2.1).
      SSL_shutdown(first.ssl);
      ASSERT_TRUE(SSL_SESSION_is_resumable(saved)) << "v1.2=" << v12;
    }
    RawClient second(cctx->native(), saved);
    Session server(sctx, true);
    second.connect(server);
    ASSERT_TRUE(server.handshake_done()) << server.error();
    EXPECT_TRUE(SSL_session_reused(second.ssl)) << "v1.2=" << v12;
    SSL_SESSION_free(saved);
  }
}

}  // namespace
}  // namespace tls_test
