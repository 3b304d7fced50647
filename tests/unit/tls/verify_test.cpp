// Certificate verification on the client (RFC 5280 path validation, RFC 6125 names) and what
// each side reports when it fails. The expected texts are OpenSSL 3's own reason strings.
#include "tls/tls.hpp"

#include <gtest/gtest.h>

#include "tls_harness.hpp"

namespace tls_test {
namespace {

using ::testing::HasSubstr;

TEST(TlsVerify, WrongHostnameFailsWithHostnameMismatch) {
  Pair p(client_ctx(), server_ctx(), "example.com");
  p.pump();
  ASSERT_TRUE(p.client.failed());
  EXPECT_FALSE(p.client.handshake_done());
  EXPECT_EQ(p.client.error(), "certificate verify failed: hostname mismatch");
  // The client's alert tells the server why (RFC 8446 §6.2).
  EXPECT_TRUE(p.server.failed());
  EXPECT_THAT(p.server.error(), HasSubstr("alert"));
  EXPECT_FALSE(p.client.write(bytes("x")));
  EXPECT_FALSE(p.client.feed(bytes("x")));
}

TEST(TlsVerify, WrongIpAddressFailsWithIpAddressMismatch) {
  Pair p(client_ctx(), server_ctx(), "127.0.0.2");
  p.pump();
  ASSERT_TRUE(p.client.failed());
  EXPECT_EQ(p.client.error(), "certificate verify failed: IP address mismatch");
}

TEST(TlsVerify, NamesAreComparedWholeNotAsSuffixes) {
  Pair p(client_ctx(), server_ctx(), "xlocalhost");
  p.pump();
  ASSERT_TRUE(p.client.failed());
  EXPECT_EQ(p.client.error(), "certificate verify failed: hostname mismatch");
}

TEST(TlsVerify, Rfc6125_6_4_3_WildcardMatchesExactlyOneLeftmostLabel) {
  for (const char* host : {"a.wild.test", "A.WILD.TEST"}) {  // DNS names are case-insensitive
    Pair p(client_ctx(), server_ctx(), host);
    p.pump();
    EXPECT_TRUE(p.both_done()) << host << ": " << p.client.error();
  }
  for (const char* host : {"b.a.wild.test", "wild.test"}) {
    Pair p(client_ctx(), server_ctx(), host);
    p.pump();
    EXPECT_TRUE(p.client.failed()) << host;
    EXPECT_EQ(p.client.error(), "certificate verify failed: hostname mismatch") << host;
  }
}

TEST(TlsVerify, SelfSignedServerCertificateIsRejected) {
  Pair p(client_ctx(), server_ctx(test_pki().self_signed_cert, test_pki().self_signed_key));
  p.pump();
  ASSERT_TRUE(p.client.failed());
  EXPECT_EQ(p.client.error(), "certificate verify failed: self-signed certificate");
  EXPECT_TRUE(p.server.failed());
}

TEST(TlsVerify, CertificateFromAnUntrustedCaIsRejected) {
  // The trust store holds only an unrelated certificate: the server's issuer is unknown.
  Pair p(client_ctx(test_pki().self_signed_cert), server_ctx());
  p.pump();
  ASSERT_TRUE(p.client.failed());
  EXPECT_EQ(p.client.error(), "certificate verify failed: unable to get local issuer certificate");
  EXPECT_THAT(p.server.error(), HasSubstr("unknown ca"));
}

TEST(TlsVerify, VerifyOffAcceptsSelfSignedAndAnyName) {
  Pair p(client_ctx("", false), server_ctx(test_pki().self_signed_cert, test_pki().self_signed_key),
         "not-the-name.example");
  p.pump();
  ASSERT_TRUE(p.both_done()) << p.client.error();
  EXPECT_EQ(p.server.server_name(), "not-the-name.example");  // SNI is still sent
  ASSERT_TRUE(p.client.write(bytes("hi")));
  p.pump();
  EXPECT_EQ(p.server_got, "hi");
}

TEST(TlsVerify, IntermediateFromTheChainFileVerifiesAgainstTheRootOnly) {
  Pair p(client_ctx(test_pki().ca_cert), server_ctx(test_pki().chain_cert, test_pki().chain_key));
  p.pump();
  ASSERT_TRUE(p.both_done()) << p.client.error();
}

TEST(TlsVerify, LeafWithoutItsIntermediateDoesNotVerify) {
  // The same leaf, but the server does not send the intermediate: the root alone cannot link it.
  Pair p(client_ctx(test_pki().ca_cert),
         server_ctx(test_pki().chain_leaf_only, test_pki().chain_key));
  p.pump();
  ASSERT_TRUE(p.client.failed());
  EXPECT_EQ(p.client.error(), "certificate verify failed: unable to get local issuer certificate");
}

TEST(TlsVerify, EmptyHostVerifiesTheChainOnly) {
  Pair ok(client_ctx(), server_ctx(), "");
  ok.pump();
  EXPECT_TRUE(ok.both_done()) << ok.client.error();
  Pair bad(client_ctx(), server_ctx(test_pki().self_signed_cert, test_pki().self_signed_key), "");
  bad.pump();
  EXPECT_TRUE(bad.client.failed());
}

TEST(TlsAlpn, ClientWithoutAlpnStillConnects) {
  auto cctx = client_ctx();
  ASSERT_EQ(SSL_CTX_set_alpn_protos(cctx->native(), nullptr, 0), 0);  // clears the offer
  Pair p(cctx, server_ctx());
  p.pump();
  ASSERT_TRUE(p.both_done()) << p.server.error();
  EXPECT_EQ(p.server.alpn(), "");
  EXPECT_EQ(p.client.alpn(), "");
}

TEST(TlsAlpn, ServerPicksHttp11AmongOthers) {
  auto cctx = client_ctx();
  static const unsigned char offer[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  ASSERT_EQ(SSL_CTX_set_alpn_protos(cctx->native(), offer, sizeof offer), 0);
  Pair p(cctx, server_ctx());
  p.pump();
  ASSERT_TRUE(p.both_done());
  EXPECT_EQ(p.client.alpn(), "http/1.1");
}

TEST(TlsAlpn, Rfc7301_3_2_NoCommonProtocolIsAFatalNoApplicationProtocolAlert) {
  auto cctx = client_ctx();
  static const unsigned char offer[] = {2, 'h', '2'};
  ASSERT_EQ(SSL_CTX_set_alpn_protos(cctx->native(), offer, sizeof offer), 0);
  Pair p(cctx, server_ctx());
  p.pump();
  ASSERT_TRUE(p.server.failed());
  EXPECT_THAT(p.server.error(), HasSubstr("no application protocol"));
  ASSERT_TRUE(p.client.failed());
  EXPECT_THAT(p.client.error(), HasSubstr("no application protocol"));
}

}  // namespace
}  // namespace tls_test
