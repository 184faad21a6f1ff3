// The upstream's TLS alerts in words: a server that requires a client certificate is named as
// such over TLS 1.3 (its own alert) and over TLS 1.2 (handshake_failure after a certificate
// request), and the other common alerts say what the user can do.
#include "proxy/net/tls_alert.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <gtest/gtest.h>

#include <asio/error.hpp>
#include <asio/ssl/error.hpp>
#include <string>

namespace mailtap::net {
namespace {

std::error_code ssl_error(int reason) {
  return {static_cast<int>(ERR_PACK(ERR_LIB_SSL, reason)), asio::error::get_ssl_category()};
}

std::error_code alert(int description) {
  return ssl_error(SSL_AD_REASON_OFFSET + description);
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(UpstreamAlert, CertificateRequiredSaysMailtapPresentsNone) {
  const std::string d = describe_upstream_alert(alert(TLS1_AD_CERTIFICATE_REQUIRED), false);
  EXPECT_EQ(d.rfind("requires a client certificate (TLS alert \"certificate required\")", 0), 0u)
      << d;
  EXPECT_TRUE(has(d, "mailtap presents none")) << d;
  EXPECT_TRUE(has(d, "mailtap has no client-certificate option")) << d;
  EXPECT_FALSE(has(d, "OPENSSL_internal")) << d;
}

TEST(UpstreamAlert, Tls12HandshakeFailureAfterACertificateRequestIsTheMissingCertificate) {
  const std::string d = describe_upstream_alert(alert(SSL3_AD_HANDSHAKE_FAILURE), true);
  EXPECT_EQ(
      d.rfind("requires a client certificate (TLS alert \"handshake failure\" after asking", 0), 0u)
      << d;
  EXPECT_FALSE(has(d, "SSLV3_ALERT")) << d;
}

TEST(UpstreamAlert, HandshakeFailureWithoutACertificateRequestIsNothingInCommon) {
  const std::string d = describe_upstream_alert(alert(SSL3_AD_HANDSHAKE_FAILURE), false);
  EXPECT_FALSE(has(d, "client certificate")) << d;
  EXPECT_TRUE(has(d, "TLS alert \"handshake failure\"")) << d;
  EXPECT_TRUE(has(d, "TLS 1.2 or later")) << d;
}

TEST(UpstreamAlert, CommonAlertsSayWhatToDo) {
  EXPECT_TRUE(has(describe_upstream_alert(alert(TLS1_AD_PROTOCOL_VERSION), false),
                  "does not speak TLS 1.2 or later"));
  EXPECT_TRUE(has(describe_upstream_alert(alert(TLS1_AD_UNRECOGNIZED_NAME), false), "--tls-name"));
  EXPECT_TRUE(has(describe_upstream_alert(alert(TLS1_AD_INSUFFICIENT_SECURITY), false),
                  "stronger TLS cipher suites"));
  const std::string other = describe_upstream_alert(alert(TLS1_AD_INTERNAL_ERROR), false);
  EXPECT_EQ(other.rfind("ended TLS with TLS alert \"internal error\"", 0), 0u) << other;
}

TEST(UpstreamAlert, AnythingButAnAlertIsLeftToTheCaller) {
  EXPECT_EQ(describe_upstream_alert(ssl_error(SSL_R_BAD_PACKET_LENGTH), true), "");
  EXPECT_EQ(describe_upstream_alert(asio::error::eof, true), "");
  EXPECT_EQ(describe_upstream_alert(asio::error::connection_reset, false), "");
}

}  // namespace
}  // namespace mailtap::net
