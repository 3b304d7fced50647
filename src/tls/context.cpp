// Context: the SSL_CTX for one role and configuration.
#include "tls/tls.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cstring>

#include "tls/openssl_error.hpp"

namespace tether::tls {
namespace {

// ALPN wire format (RFC 7301 §3.1): length-prefixed protocol names.
constexpr unsigned char kAlpnHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

// Server ALPN choice. Only invoked when the client sent the extension: a client without ALPN
// (curl --no-alpn, older libraries) still connects. A client that offers ALPN but not http/1.1
// (e.g. "h2" only) could not speak to us anyway, so RFC 7301 §3.2 applies: fatal
// no_application_protocol alert, which tells it why instead of failing later on the HTTP bytes.
int select_alpn(SSL*, const unsigned char** out, unsigned char* out_len, const unsigned char* in,
                unsigned int in_len, void*) {
  for (unsigned int i = 0; i < in_len;) {
    const unsigned int n = in[i];
    if (n == 0 || i + 1 + n > in_len) break;  // malformed list: OpenSSL rejects it first anyway
    if (n == 8 && std::memcmp(in + i + 1, "http/1.1", 8) == 0) {
      *out = in + i + 1;
      *out_len = static_cast<unsigned char>(n);
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + n;
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

// Settings shared by both roles.
SSL_CTX* new_ctx(const SSL_METHOD* method, std::string& error) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(method);
  if (ctx == nullptr) {
    error = "SSL_CTX_new: " + detail::drain_openssl_errors();
    return nullptr;
  }
  // TLS 1.0/1.1 are deprecated (RFC 8996).
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // TLS 1.2 renegotiation is a CPU-exhaustion vector and nothing here needs it.
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
  // Session retries a write that wanted a read from its own queue, which may have moved.
  SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // Not SSL_MODE_RELEASE_BUFFERS: it saves ~34 KiB per idle connection but frees and
  // reallocates the record buffers on every burst, i.e. allocations per message.
  return ctx;
}

std::string fail(SSL_CTX* ctx, std::string_view what, std::string_view file) {
  SSL_CTX_free(ctx);
  std::string text(what);
  text += ' ';
  text += file;
  text += ": ";
  std::string reason = detail::drain_openssl_errors();
  text += reason.empty() ? std::string("unknown error") : reason;
  return text;
}

}  // namespace

Context::~Context() { SSL_CTX_free(ctx_); }

std::shared_ptr<Context> Context::server(std::string_view cert_file, std::string_view key_file,
                                         std::string& error) {
  SSL_CTX* ctx = new_ctx(TLS_server_method(), error);
  if (ctx == nullptr) return nullptr;
  const std::string cert(cert_file), key(key_file);  // NUL-terminated for OpenSSL
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1) {
    error = fail(ctx, "certificate chain", cert_file);
    return nullptr;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    error = fail(ctx, "private key", key_file);
    return nullptr;
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    error = fail(ctx, "private key", key_file);
    return nullptr;
  }
  SSL_CTX_set_alpn_select_cb(ctx, select_alpn, nullptr);
  // Resumption through stateless tickets only (TLS 1.3 and 1.2): the server-side session cache
  // would take a lock shared by all loop threads on every handshake and hold memory per client.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  return std::shared_ptr<Context>(new Context(ctx, true, false));
}

std::shared_ptr<Context> Context::client(std::string_view ca_file, bool verify,
                                         std::string& error) {
  SSL_CTX* ctx = new_ctx(TLS_client_method(), error);
  if (ctx == nullptr) return nullptr;
  if (SSL_CTX_set_alpn_protos(ctx, kAlpnHttp11, sizeof kAlpnHttp11) != 0) {  // 0 is success
    error = fail(ctx, "ALPN", "http/1.1");
    return nullptr;
  }
  if (verify) {
    // The trust store is only loaded when it is used (the system bundle costs milliseconds).
    if (!ca_file.empty()) {
      const std::string ca(ca_file);
      if (SSL_CTX_load_verify_file(ctx, ca.c_str()) != 1) {
        error = fail(ctx, "CA file", ca_file);
        return nullptr;
      }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
      error = fail(ctx, "default trust store", "(system)");
      return nullptr;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  return std::shared_ptr<Context>(new Context(ctx, false, verify));
}

}  // namespace tether::tls
