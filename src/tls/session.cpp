// Session: one SSL object whose transport is a custom BIO over two reused byte vectors.
//
// Steady-state cost per TLS record (up to 16 KiB of plaintext), once the vectors have reached
// their working size (no allocation here):
//   receive: feed() copies ciphertext into `in`; OpenSSL copies the record from `in` into its
//            own record buffer, decrypts it in place and copies the plaintext into read()'s span.
//   send:    OpenSSL encrypts into its record buffer; the BIO appends it to `out`; the caller
//            send()s straight from pending().
// A custom BIO rather than BIO_s_mem: pending() can then be a span over `out` (a memory BIO can
// only be drained by copying out with BIO_read), and compaction is under our control.
// Memory per connection: OpenSSL's two record buffers (~17 KiB each, kept: no
// SSL_MODE_RELEASE_BUFFERS) plus `in`/`out` at their high-water marks, trimmed after bursts.
#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "tls/openssl_error.hpp"
#include "tls/tls.hpp"

namespace tether::tls {

// Buffers that grew past this during a burst (a 1 MiB message) are released when they drain,
// so an idle connection does not keep its peak; the next burst regrows them.
constexpr std::size_t kTrimAbove = 1 << 20;

struct Session::Impl {
  std::shared_ptr<Context> ctx;
  SSL* ssl = nullptr;
  std::vector<uint8_t> in;  // ciphertext fed, not yet pulled by OpenSSL: [in_pos, size)
  std::size_t in_pos = 0;
  std::vector<uint8_t> out;  // ciphertext for the socket: [out_pos, size)
  std::size_t out_pos = 0;
  std::vector<uint8_t> queued;  // plaintext waiting for the handshake (or a write's retry)
  std::string error;
  bool server = false;
  bool done = false;
  bool failed = false;
  bool peer_closed = false;
  bool shutdown_requested = false;
  bool shutdown_sent = false;

  ~Impl() { SSL_free(ssl); }  // frees the BIO too

  void fail(std::string text) {
    failed = true;
    error = std::move(text);
    queued.clear();
  }
  // After an SSL call returned `ret`: records a fatal error, returns false for it. Want-read
  // (and want-write, which this BIO never causes) is not an error.
  bool check(int ret);
  bool drive_handshake();
  void flush_queued();
  void send_close_notify();
  void append_out(const uint8_t* p, std::size_t n);
};

namespace {

// --- the BIO: reads come from Impl::in, writes go to Impl::out; never blocks, never EOF
// (TCP EOF is the caller's to report: peer_closed() says whether it was orderly).

int bio_write_ex(BIO* b, const char* data, size_t n, size_t* written) {
  auto* s = static_cast<Session::Impl*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  try {
    s->append_out(reinterpret_cast<const uint8_t*>(data), n);
  } catch (...) {  // bad_alloc must not unwind through OpenSSL
    *written = 0;
    return 0;
  }
  *written = n;
  return 1;
}

int bio_read_ex(BIO* b, char* data, size_t n, size_t* read) {
  auto* s = static_cast<Session::Impl*>(BIO_get_data(b));
  BIO_clear_retry_flags(b);
  const std::size_t avail = s->in.size() - s->in_pos;
  if (avail == 0) {
    BIO_set_retry_read(b);  // -> SSL_ERROR_WANT_READ: feed() more
    *read = 0;
    return 0;
  }
  const std::size_t k = std::min(n, avail);
  std::memcpy(data, s->in.data() + s->in_pos, k);
  s->in_pos += k;
  if (s->in_pos == s->in.size()) {
    s->in.clear();
    s->in_pos = 0;
  }
  *read = k;
  return 1;
}

long bio_ctrl(BIO* b, int cmd, long, void*) {
  auto* s = static_cast<Session::Impl*>(BIO_get_data(b));
  switch (cmd) {
    case BIO_CTRL_FLUSH:  // OpenSSL flushes after each handshake flight; bytes are in `out`
      return 1;
    case BIO_CTRL_PENDING:
      return s != nullptr ? static_cast<long>(s->in.size() - s->in_pos) : 0;
    case BIO_CTRL_WPENDING:
    case BIO_CTRL_EOF:
      return 0;
    default:
      return 0;  // unsupported (ktls, dgram, push/pop): 0 is "no" for all of them
  }
}

int bio_create(BIO* b) {
  BIO_set_init(b, 1);
  return 1;
}

int bio_destroy(BIO*) { return 1; }  // the data pointer is the Session's, not the BIO's

// Built once per process and never freed (reachable from this static).
const BIO_METHOD* bio_method() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "tether-tls");
    if (m != nullptr) {
      BIO_meth_set_write_ex(m, bio_write_ex);
      BIO_meth_set_read_ex(m, bio_read_ex);
      BIO_meth_set_ctrl(m, bio_ctrl);
      BIO_meth_set_create(m, bio_create);
      BIO_meth_set_destroy(m, bio_destroy);
    }
    return m;
  }();
  return method;
}

// Releases a buffer that grew past kTrimAbove once it is empty.
void trim(std::vector<uint8_t>& v) {
  if (v.empty() && v.capacity() > kTrimAbove) std::vector<uint8_t>().swap(v);
}

// "[::1]" -> "::1"; true when `host` is an IPv4 or IPv6 literal.
bool is_ip_literal(std::string& host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  unsigned char addr[16];
  return inet_pton(AF_INET, host.c_str(), addr) == 1 ||
         inet_pton(AF_INET6, host.c_str(), addr) == 1;
}

}  // namespace

void Session::Impl::append_out(const uint8_t* p, std::size_t n) {
  // Compact when the consumed head is at least as large as what is left: each byte is moved at
  // most once on average, and a socket under backpressure does not grow `out` without bound.
  if (out_pos > 0 && out_pos >= out.size() - out_pos) {
    out.erase(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(out_pos));
    out_pos = 0;
  }
  out.insert(out.end(), p, p + n);
}

bool Session::Impl::check(int ret) {
  const int e = SSL_get_error(ssl, ret);
  switch (e) {
    case SSL_ERROR_NONE:
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
      return true;
    case SSL_ERROR_ZERO_RETURN:
      peer_closed = true;
      return true;
    default:
      break;
  }
  std::string text = detail::drain_openssl_errors();
  // "certificate verify failed" alone does not say why; the verify result does ("hostname
  // mismatch", "unable to get local issuer certificate", "self-signed certificate").
  const long verify = SSL_get_verify_result(ssl);
  if (verify != X509_V_OK && text.find("certificate verify failed") != std::string::npos) {
    text += ": ";
    text += X509_verify_cert_error_string(verify);
  }
  if (text.empty()) {
    text = e == SSL_ERROR_SYSCALL ? "unexpected end of TLS stream" : "TLS error";
  }
  fail(std::move(text));
  return false;
}

// Returns true once the handshake is complete (now or before).
bool Session::Impl::drive_handshake() {
  if (done) return true;
  ERR_clear_error();
  const int r = SSL_do_handshake(ssl);
  if (r != 1) {
    if (check(r) && peer_closed) fail("close_notify during the handshake");
    return false;
  }
  done = true;
  flush_queued();
  return !failed;
}

// Encrypts plaintext queued before the handshake, then a deferred shutdown.
void Session::Impl::flush_queued() {
  if (!done || failed) return;
  if (!queued.empty()) {
    ERR_clear_error();
    std::size_t written = 0;
    const int r = SSL_write_ex(ssl, queued.data(), queued.size(), &written);
    if (r != 1) {
      // Want-read: a TLS 1.2 handshake message is in flight (renegotiation is off, so this is
      // rare); retried, with the same bytes first, after the next read().
      check(r);
      return;
    }
    queued.clear();
    trim(queued);
  }
  if (shutdown_requested && !shutdown_sent) send_close_notify();
}

void Session::Impl::send_close_notify() {
  shutdown_sent = true;
  ERR_clear_error();
  // 0: close_notify queued, the peer's not yet seen; 1: both done. Either way ours is in `out`.
  const int r = SSL_shutdown(ssl);
  if (r < 0) check(r);
}

Session::Session(std::shared_ptr<Context> ctx, bool server, std::string_view host)
    : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.ctx = std::move(ctx);
  s.server = server;
  if (s.ctx == nullptr || s.ctx->is_server() != server) {
    s.fail(s.ctx == nullptr ? "no TLS context" : "TLS context made for the other role");
    return;
  }
  ERR_clear_error();
  const BIO_METHOD* method = bio_method();
  s.ssl = SSL_new(s.ctx->native());
  BIO* bio = method != nullptr ? BIO_new(method) : nullptr;
  if (s.ssl == nullptr || bio == nullptr) {
    BIO_free(bio);
    s.fail("SSL_new: " + detail::drain_openssl_errors());
    return;
  }
  BIO_set_data(bio, impl_.get());  // Impl does not move when the Session does
  SSL_set_bio(s.ssl, bio, bio);    // one BIO both ways; SSL owns it
  if (server) {
    SSL_set_accept_state(s.ssl);
    return;
  }
  SSL_set_connect_state(s.ssl);
  std::string name(host);
  const bool ip = is_ip_literal(name);
  if (!ip && !name.empty() && name.back() == '.') name.pop_back();  // RFC 6066 §3: no dot
  bool ok = true;
  // RFC 6066 §3: "Literal IPv4 and IPv6 addresses are not permitted in HostName".
  if (!ip && !name.empty()) ok = SSL_set_tlsext_host_name(s.ssl, name.c_str()) == 1;
  if (ok && s.ctx->verify() && !name.empty()) {
    if (ip) {
      ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s.ssl), name.c_str()) == 1;
    } else {
      // "*.example.com" may match "a.example.com" but not "xa.example.com" (RFC 6125 §7.2).
      SSL_set_hostflags(s.ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      ok = SSL_set1_host(s.ssl, name.c_str()) == 1;
    }
  }
  if (!ok) {
    std::string reason = detail::drain_openssl_errors();
    s.fail("invalid host name \"" + name + "\"" + (reason.empty() ? "" : ": " + reason));
    return;
  }
  // The ClientHello goes into pending() now, so the caller can send it as soon as TCP connects.
  s.drive_handshake();
}

Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

bool Session::feed(std::span<const uint8_t> ciphertext) {
  Impl& s = *impl_;
  if (s.failed) return false;
  if (s.in_pos > 0) {  // normally a partial record is left here: a small move
    s.in.erase(s.in.begin(), s.in.begin() + static_cast<std::ptrdiff_t>(s.in_pos));
    s.in_pos = 0;
  }
  trim(s.in);
  s.in.insert(s.in.end(), ciphertext.begin(), ciphertext.end());
  return true;
}

std::size_t Session::read(std::span<uint8_t> out) {
  Impl& s = *impl_;
  if (s.failed || s.peer_closed) return 0;
  if (!s.drive_handshake()) return 0;
  if (!s.queued.empty()) s.flush_queued();  // a write that wanted a read, now retried
  if (s.failed || out.empty()) return 0;
  ERR_clear_error();
  std::size_t n = 0;
  const int r = SSL_read_ex(s.ssl, out.data(), out.size(), &n);
  if (r == 1) return n;
  s.check(r);  // want-read: need more ciphertext; zero-return: close_notify -> peer_closed
  return 0;
}

bool Session::write(std::span<const uint8_t> plaintext) {
  Impl& s = *impl_;
  if (s.failed || s.shutdown_requested) return false;
  if (plaintext.empty()) return true;
  if (!s.done || !s.queued.empty()) {  // keep order behind what already waits
    s.queued.insert(s.queued.end(), plaintext.begin(), plaintext.end());
    return true;
  }
  ERR_clear_error();
  std::size_t written = 0;
  const int r = SSL_write_ex(s.ssl, plaintext.data(), plaintext.size(), &written);
  if (r == 1) return true;
  if (!s.check(r)) return false;
  // Want-read (see flush_queued). OpenSSL requires the retry to present the same bytes again
  // (it resumes after the records it already wrote), so keep all of it.
  s.queued.assign(plaintext.begin(), plaintext.end());
  return true;
}

std::span<const uint8_t> Session::pending() const {
  const Impl& s = *impl_;
  return {s.out.data() + s.out_pos, s.out.size() - s.out_pos};
}

void Session::consume(std::size_t n) {
  Impl& s = *impl_;
  s.out_pos += std::min(n, s.out.size() - s.out_pos);
  if (s.out_pos == s.out.size()) {
    s.out.clear();
    s.out_pos = 0;
    trim(s.out);
  }
}

bool Session::handshake_done() const { return impl_->done; }
bool Session::failed() const { return impl_->failed; }
const std::string& Session::error() const { return impl_->error; }
bool Session::peer_closed() const { return impl_->peer_closed; }

void Session::shutdown() {
  Impl& s = *impl_;
  if (s.failed || s.shutdown_requested) return;
  s.shutdown_requested = true;
  // Before the handshake, or behind queued plaintext: sent by flush_queued() once possible.
  if (s.done && s.queued.empty()) s.send_close_notify();
}

std::string_view Session::alpn() const {
  if (impl_->ssl == nullptr) return {};
  const unsigned char* p = nullptr;
  unsigned int n = 0;
  SSL_get0_alpn_selected(impl_->ssl, &p, &n);
  return p != nullptr ? std::string_view(reinterpret_cast<const char*>(p), n) : std::string_view{};
}

std::string_view Session::server_name() const {
  if (impl_->ssl == nullptr) return {};
  const char* name = SSL_get_servername(impl_->ssl, TLSEXT_NAMETYPE_host_name);
  return name != nullptr ? std::string_view(name) : std::string_view{};
}

std::string_view Session::protocol_version() const {
  if (impl_->ssl == nullptr) return {};
  return SSL_get_version(impl_->ssl);
}

}  // namespace tether::tls
