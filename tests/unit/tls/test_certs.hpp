// Test PKI generated at run time with the OpenSSL 3 API (EC P-256, so it takes milliseconds):
//
//   root CA ── server.pem            "localhost", "*.wild.test", IP 127.0.0.1 and ::1
//          └── intermediate CA ── chain.pem (leaf + intermediate), chain_leaf.pem (leaf only)
//   self_signed.pem                  "localhost" + 127.0.0.1, issued by itself, trusted by nobody
//
// Every file is PEM in one temporary directory, created on first use and removed at exit:
//
//   const auto& pki = tether::test::test_pki();
//   auto ctx = tls::Context::server(pki.server_cert, pki.server_key, error);
//
// Reusable by any test that needs TLS (link OpenSSL::Crypto, as every unit binary does).
#pragma once
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

namespace tether::test {

struct TestPki {
  std::string dir;
  std::string ca_cert;           // root CA certificate: the trust anchor for the tests
  std::string server_cert;       // leaf signed by the root: localhost, *.wild.test, 127.0.0.1, ::1
  std::string server_key;        //
  std::string chain_cert;        // leaf signed by the intermediate, then the intermediate
  std::string chain_leaf_only;   // the same leaf alone (a server that forgot its chain)
  std::string chain_key;         //
  std::string self_signed_cert;  // self-signed leaf for localhost / 127.0.0.1
  std::string self_signed_key;   //
  std::string other_key;         // a valid key that matches none of the certificates
  std::string not_pem;           // a file that is not PEM at all

  TestPki();
  ~TestPki() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  TestPki(const TestPki&) = delete;
  TestPki& operator=(const TestPki&) = delete;
};

// Generated once per process.
inline const TestPki& test_pki() {
  static const TestPki pki;
  return pki;
}

namespace detail {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
using Key = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Cert = std::unique_ptr<X509, X509Free>;

inline void check(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("test PKI: ") + what);
}

inline Key make_key() {
  Key key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  check(key != nullptr, "EVP_PKEY_Q_keygen");
  return key;
}

inline void add_ext(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, ctx, nid, value);
  check(ext != nullptr, "X509V3_EXT_conf_nid");
  const bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  check(ok, "X509_add_ext");
}

// A certificate for `key` named `cn`, signed by `issuer`/`issuer_key` (self-signed when null).
// `san` is a subjectAltName value ("DNS:localhost,IP:127.0.0.1") for leaves; empty for CAs.
inline Cert make_cert(const char* cn, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key, bool ca,
                      const char* san) {
  static uint64_t serial = 1;
  Cert cert(X509_new());
  check(cert != nullptr, "X509_new");
  X509* x = cert.get();
  check(X509_set_version(x, X509_VERSION_3) == 1, "X509_set_version");
  check(ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), serial++) == 1, "serial");
  // An hour in the past: tolerate clock skew between this test and any peer reading the files.
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 30L * 24 * 3600);
  check(X509_set_pubkey(x, key) == 1, "X509_set_pubkey");
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("tether test"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn),
                             -1, -1, 0);
  check(X509_set_issuer_name(x, issuer != nullptr ? X509_get_subject_name(issuer) : name) == 1,
        "X509_set_issuer_name");
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer != nullptr ? issuer : x, x, nullptr, nullptr, 0);
  add_ext(x, &ctx, NID_subject_key_identifier, "hash");
  if (issuer != nullptr) add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always");
  if (ca) {
    add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature");
    add_ext(x, &ctx, NID_ext_key_usage, "serverAuth");
    add_ext(x, &ctx, NID_subject_alt_name, san);
  }
  check(X509_sign(x, issuer_key != nullptr ? issuer_key : key, EVP_sha256()) > 0, "X509_sign");
  return cert;
}

inline std::string write_pem(const std::string& dir, const char* file, X509* a, X509* b = nullptr,
                             EVP_PKEY* key = nullptr) {
  const std::string path = dir + "/" + file;
  FILE* f = std::fopen(path.c_str(), "w");
  check(f != nullptr, "fopen");
  bool ok = true;
  if (a != nullptr) ok = ok && PEM_write_X509(f, a) == 1;
  if (b != nullptr) ok = ok && PEM_write_X509(f, b) == 1;
  if (key != nullptr) {
    ok = ok && PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
  }
  ok = std::fclose(f) == 0 && ok;
  check(ok, "PEM write");
  return path;
}

}  // namespace detail

inline TestPki::TestPki() {
  using namespace detail;
  std::string tmpl = (std::filesystem::temp_directory_path() / "tether-tls-XXXXXX").string();
  check(mkdtemp(tmpl.data()) != nullptr, "mkdtemp");
  dir = tmpl;

  const char* leaf_san = "DNS:localhost,DNS:*.wild.test,IP:127.0.0.1,IP:::1";
  Key root_key = make_key(), inter_key = make_key(), leaf_key = make_key(),
      chain_leaf_key = make_key(), self_key = make_key(), spare_key = make_key();
  Cert root = make_cert("tether test root CA", root_key.get(), nullptr, nullptr, true, "");
  Cert inter = make_cert("tether test intermediate CA", inter_key.get(), root.get(), root_key.get(),
                         true, "");
  Cert leaf = make_cert("localhost", leaf_key.get(), root.get(), root_key.get(), false, leaf_san);
  Cert chain_leaf =
      make_cert("localhost", chain_leaf_key.get(), inter.get(), inter_key.get(), false, leaf_san);
  Cert self =
      make_cert("localhost", self_key.get(), nullptr, nullptr, false, "DNS:localhost,IP:127.0.0.1");

  ca_cert = write_pem(dir, "ca.pem", root.get());
  server_cert = write_pem(dir, "server.pem", leaf.get());
  server_key = write_pem(dir, "server.key", nullptr, nullptr, leaf_key.get());
  chain_cert = write_pem(dir, "chain.pem", chain_leaf.get(), inter.get());
  chain_leaf_only = write_pem(dir, "chain_leaf.pem", chain_leaf.get());
  chain_key = write_pem(dir, "chain.key", nullptr, nullptr, chain_leaf_key.get());
  self_signed_cert = write_pem(dir, "self_signed.pem", self.get());
  self_signed_key = write_pem(dir, "self_signed.key", nullptr, nullptr, self_key.get());
  other_key = write_pem(dir, "other.key", nullptr, nullptr, spare_key.get());
  not_pem = dir + "/not_pem.txt";
  FILE* f = std::fopen(not_pem.c_str(), "w");
  check(f != nullptr, "fopen");
  std::fputs("this is not a PEM file\n", f);
  std::fclose(f);
}

}  // namespace tether::test
