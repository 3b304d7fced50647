// Context construction: bad files and mismatched keys give null and a reason naming the file.
#include "tls/tls.hpp"

#include <gtest/gtest.h>

#include "tls_harness.hpp"

namespace tls_test {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(TlsContext, ServerAndClientContextsFromValidFiles) {
  std::string error;
  auto s = Context::server(test_pki().server_cert, test_pki().server_key, error);
  ASSERT_NE(s, nullptr) << error;
  EXPECT_TRUE(s->is_server());
  auto c = Context::client(test_pki().ca_cert, true, error);
  ASSERT_NE(c, nullptr) << error;
  EXPECT_FALSE(c->is_server());
  EXPECT_TRUE(c->verify());
}

TEST(TlsContext, ClientWithTheSystemTrustStore) {
  std::string error;
  auto c = Context::client("", true, error);
  ASSERT_NE(c, nullptr) << error;
  // Our test CA is not in the system store.
  Pair p(c, server_ctx());
  p.pump();
  EXPECT_TRUE(p.client.failed());
  EXPECT_THAT(p.client.error(), HasSubstr("certificate verify failed"));
}

TEST(TlsContext, MissingCertificateFile) {
  std::string error;
  const std::string path = test_pki().dir + "/missing.pem";
  EXPECT_EQ(Context::server(path, test_pki().server_key, error), nullptr);
  EXPECT_THAT(error, StartsWith("certificate chain " + path + ": "));
  EXPECT_THAT(error, HasSubstr("No such file or directory"));
}

TEST(TlsContext, CertificateFileThatIsNotPem) {
  std::string error;
  EXPECT_EQ(Context::server(test_pki().not_pem, test_pki().server_key, error), nullptr);
  EXPECT_THAT(error, StartsWith("certificate chain " + test_pki().not_pem + ": "));
  EXPECT_THAT(error, HasSubstr("no start line"));
}

TEST(TlsContext, MissingKeyFile) {
  std::string error;
  const std::string path = test_pki().dir + "/missing.key";
  EXPECT_EQ(Context::server(test_pki().server_cert, path, error), nullptr);
  EXPECT_THAT(error, StartsWith("private key " + path + ": "));
}

TEST(TlsContext, KeyFileThatIsNotAKey) {
  std::string error;
  EXPECT_EQ(Context::server(test_pki().server_cert, test_pki().not_pem, error), nullptr);
  EXPECT_THAT(error, StartsWith("private key " + test_pki().not_pem + ": "));
}

TEST(TlsContext, KeyThatDoesNotMatchTheCertificate) {
  std::string error;
  EXPECT_EQ(Context::server(test_pki().server_cert, test_pki().other_key, error), nullptr);
  EXPECT_EQ(error, "private key " + test_pki().other_key + ": key values mismatch");
  // The chain file's leaf with the other leaf's key.
  EXPECT_EQ(Context::server(test_pki().chain_cert, test_pki().server_key, error), nullptr);
  EXPECT_THAT(error, HasSubstr("key values mismatch"));
}

TEST(TlsContext, MissingCaFile) {
  std::string error;
  const std::string path = test_pki().dir + "/missing-ca.pem";
  EXPECT_EQ(Context::client(path, true, error), nullptr);
  EXPECT_THAT(error, StartsWith("CA file " + path + ": "));
}

}  // namespace
}  // namespace tls_test
