// A client Session and a server Session joined in memory: ciphertext is moved between them by
// hand (optionally in small pieces), no sockets, no threads.
#pragma once
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "test_certs.hpp"
#include "tls/tls.hpp"

namespace tls_test {

using tether::test::test_pki;
using tether::tls::Context;
using tether::tls::Session;

inline std::span<const uint8_t> bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

inline std::shared_ptr<Context> server_ctx(const std::string& cert, const std::string& key) {
  std::string error;
  auto ctx = Context::server(cert, key, error);
  EXPECT_NE(ctx, nullptr) << error;
  return ctx;
}
inline std::shared_ptr<Context> server_ctx() {
  return server_ctx(test_pki().server_cert, test_pki().server_key);
}
inline std::shared_ptr<Context> client_ctx(const std::string& ca, bool verify = true) {
  std::string error;
  auto ctx = Context::client(ca, verify, error);
  EXPECT_NE(ctx, nullptr) << error;
  return ctx;
}
inline std::shared_ptr<Context> client_ctx() { return client_ctx(test_pki().ca_cert); }

// Limits a context to TLS 1.2 (the 1.2 handshake has a different flight order).
inline std::shared_ptr<Context> tls12(std::shared_ptr<Context> ctx) {
  SSL_CTX_set_max_proto_version(ctx->native(), TLS1_2_VERSION);
  return ctx;
}

// A random-looking but reproducible payload, so misordered or repeated bytes are caught.
inline std::string payload(std::size_t n, uint32_t seed = 1) {
  std::string s(n, '\0');
  for (auto& c : s) {
    seed = seed * 1664525u + 1013904223u;
    c = static_cast<char>(seed >> 24);
  }
  return s;
}

struct Pair {
  Session client;
  Session server;
  std::string client_got, server_got;                           // plaintext each side has read
  std::size_t chunk = std::numeric_limits<std::size_t>::max();  // ciphertext piece size
  std::size_t read_size = 16 * 1024;                            // read() buffer size
  std::size_t moved = 0;                                        // ciphertext bytes moved

  explicit Pair(std::shared_ptr<Context> cctx = client_ctx(),
                std::shared_ptr<Context> sctx = server_ctx(), std::string_view host = "localhost")
      : client(std::move(cctx), false, host), server(std::move(sctx), true) {}

  // Reads everything available from `s` into `got`.
  void drain(Session& s, std::string& got) {
    std::vector<uint8_t> buf(read_size);
    while (std::size_t n = s.read(buf)) got.append(reinterpret_cast<const char*>(buf.data()), n);
  }

  // Moves `from`'s pending ciphertext into `to`, `chunk` bytes per feed, reading after each.
  bool transfer(Session& from, Session& to, std::string& got) {
    bool any = false;
    while (!from.pending().empty() && !to.failed()) {
      auto p = from.pending();
      const std::size_t n = std::min(chunk, p.size());
      EXPECT_TRUE(to.feed(p.first(n)));
      from.consume(n);
      moved += n;
      any = true;
      drain(to, got);
    }
    return any;
  }

  // Runs both directions until neither side has anything to send.
  void pump(int max_rounds = 10000) {
    for (int i = 0; i < max_rounds; ++i) {
      const bool a = transfer(client, server, server_got);
      const bool b = transfer(server, client, client_got);
      if (!a && !b) return;
    }
    ADD_FAILURE() << "pump did not settle";
  }

  bool both_done() const { return client.handshake_done() && server.handshake_done(); }
};

}  // namespace tls_test
