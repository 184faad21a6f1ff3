// The upstream's TLS alerts in words: a server that requires a client certificate is named as
// such over TLS 1.3 (its own alert) and over TLS 1.2 (handshake_failure after a certificate
// request), with the option that gives mailtap one; a server that refuses the certificate
// mailtap presented is said to, naming the file and what to check; and the other common alerts
// say what the user can do.
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
  const std::string d =
      describe_upstream_alert(alert(TLS1_AD_CERTIFICATE_REQUIRED), false, nullptr, true);
  EXPECT_EQ(d.rfind("requires a client certificate (TLS alert \"certificate required\")", 0), 0u)
      << d;
  EXPECT_TRUE(has(d,
                  "mailtap presents none: give it one with --client-cert FILE (and "
                  "--client-key FILE unless the key is in FILE)"))
      << d;
  EXPECT_FALSE(has(d, "OPENSSL_internal")) << d;
}

TEST(UpstreamAlert, Tls12HandshakeFailureAfterACertificateRequestIsTheMissingCertificate) {
  const std::string d =
      describe_upstream_alert(alert(SSL3_AD_HANDSHAKE_FAILURE), true, nullptr, true);
  EXPECT_EQ(
      d.rfind("requires a client certificate (TLS alert \"handshake failure\" after asking", 0), 0u)
      << d;
  EXPECT_FALSE(has(d, "SSLV3_ALERT")) << d;
}

TEST(UpstreamAlert, HandshakeFailureWithoutACertificateRequestIsNothingInCommon) {
  const std::string d =
      describe_upstream_alert(alert(SSL3_AD_HANDSHAKE_FAILURE), false, nullptr, true);
  EXPECT_FALSE(has(d, "client certificate")) << d;
  EXPECT_TRUE(has(d, "TLS alert \"handshake failure\"")) << d;
  EXPECT_TRUE(has(d, "TLS 1.2 or later")) << d;
}

TEST(UpstreamAlert, CommonAlertsSayWhatToDo) {
  EXPECT_TRUE(has(describe_upstream_alert(alert(TLS1_AD_PROTOCOL_VERSION), false, nullptr, true),
                  "does not speak TLS 1.2 or later"));
  EXPECT_TRUE(has(describe_upstream_alert(alert(TLS1_AD_UNRECOGNIZED_NAME), false, nullptr, true),
                  "does not know the name mailtap sent as SNI"));
  // An address is sent no SNI: the server wants a name, and --tls-name gives it one.
  const std::string no_sni =
      describe_upstream_alert(alert(TLS1_AD_UNRECOGNIZED_NAME), false, nullptr, false);
  EXPECT_FALSE(has(no_sni, "mailtap sent as SNI")) << no_sni;
  EXPECT_TRUE(has(no_sni, "mailtap sent none")) << no_sni;
  EXPECT_TRUE(has(no_sni, "--tls-name NAME")) << no_sni;
  EXPECT_TRUE(
      has(describe_upstream_alert(alert(TLS1_AD_INSUFFICIENT_SECURITY), false, nullptr, true),
          "stronger TLS cipher suites"));
  const std::string other =
      describe_upstream_alert(alert(TLS1_AD_INTERNAL_ERROR), false, nullptr, true);
  EXPECT_EQ(other.rfind("ended TLS with TLS alert \"internal error\"", 0), 0u) << other;
}

ClientCertificate presented() {
  ClientCertificate c;
  c.cert_path = "/home/me/relay-client.pem";
  c.leaf_facts.subject = "CN=relay client,O=Example";
  c.leaf_facts.issuer = "CN=Example client CA";
  c.leaf_facts.sha256_hex = "ab12";
  c.leaf_facts.not_after = "2030-01-01T00:00:00Z";
  c.intermediates = 1;
  return c;
}

TEST(UpstreamAlert, ARefusedCertificateIsNamedWithWhatToCheck) {
  const ClientCertificate c = presented();
  const std::string unknown_ca = describe_upstream_alert(alert(TLS1_AD_UNKNOWN_CA), true, &c, true);
  EXPECT_EQ(unknown_ca.rfind("refused mailtap's client certificate /home/me/relay-client.pem "
                             "(CN=relay client,O=Example) (TLS alert \"unknown CA\"): it does not "
                             "trust the CA that issued it (CN=Example client CA)",
                             0),
            0u)
      << unknown_ca;
  EXPECT_TRUE(
      has(unknown_ca, "that the file holds the intermediate certificates after it (it holds 1)"))
      << unknown_ca;
  EXPECT_FALSE(has(unknown_ca, "presents none")) << unknown_ca;
  // The file is named once: its path may be long, and the whole has to fit reply lines.
  for (const std::string& d :
       {unknown_ca, describe_refusal_after_certificate_request(&c),
        describe_upstream_alert(alert(SSL3_AD_BAD_CERTIFICATE), true, &c, true)}) {
    const std::size_t first = d.find(c.cert_path);
    EXPECT_NE(first, std::string::npos) << d;
    EXPECT_EQ(d.find(c.cert_path, first + 1), std::string::npos) << d;
  }
  // OpenSSL's servers over TLS 1.2 and the other certificate alerts: the certificate, not its
  // absence, and never "nothing in common".
  for (const int a : {SSL3_AD_HANDSHAKE_FAILURE, SSL3_AD_BAD_CERTIFICATE,
                      SSL3_AD_CERTIFICATE_UNKNOWN, TLS1_AD_ACCESS_DENIED}) {
    const std::string d = describe_upstream_alert(alert(a), true, &c, true);
    EXPECT_EQ(d.rfind("refused mailtap's client certificate /home/me/relay-client.pem", 0), 0u)
        << d;
    EXPECT_FALSE(has(d, "accepts none of the TLS versions")) << d;
  }
  EXPECT_TRUE(has(describe_upstream_alert(alert(TLS1_AD_ACCESS_DENIED), true, &c, true),
                  "ask the server's administrator to authorise it (SHA-256 ab12)"));
  // Not asked for: the same alert is about something else.
  EXPECT_TRUE(has(describe_upstream_alert(alert(SSL3_AD_HANDSHAKE_FAILURE), false, &c, true),
                  "accepts none of the TLS versions"));
}

TEST(UpstreamAlert, AnExpiredCertificateSaysWhenItExpired) {
  ClientCertificate c = presented();
  c.validity_problem = "it expired on 2020-02-01T00:00:00Z";
  const std::string d = describe_upstream_alert(alert(SSL3_AD_CERTIFICATE_EXPIRED), true, &c, true);
  EXPECT_TRUE(has(d,
                  "(TLS alert \"certificate expired\"): it expired on "
                  "2020-02-01T00:00:00Z: renew it"))
      << d;
}

TEST(CertificateRequest, TheRefusalAfterARequestSaysWhatMailtapPresented) {
  const std::string none = describe_refusal_after_certificate_request(nullptr);
  EXPECT_EQ(none,
            "asked for a client certificate in the TLS handshake, and mailtap presented none: "
            "give it one with --client-cert FILE (and --client-key FILE unless the key is in "
            "FILE)");
  const ClientCertificate c = presented();
  const std::string mine = describe_refusal_after_certificate_request(&c);
  EXPECT_EQ(mine.rfind("ended the session after mailtap presented its client certificate "
                       "/home/me/relay-client.pem (CN=relay client,O=Example): check that the "
                       "server trusts its issuer (CN=Example client CA)",
                       0),
            0u)
      << mine;
}

TEST(UpstreamAlert, AnythingButAnAlertIsLeftToTheCaller) {
  EXPECT_EQ(describe_upstream_alert(ssl_error(SSL_R_BAD_PACKET_LENGTH), true, nullptr, true), "");
  EXPECT_EQ(describe_upstream_alert(asio::error::eof, true, nullptr, true), "");
  EXPECT_EQ(describe_upstream_alert(asio::error::connection_reset, false, nullptr, true), "");
}

// After the client's handshake: a renegotiation mailtap refused is named, an alert the client
// sent too; a plain close or reset is no TLS failure to note.
TEST(ClientTlsError, ARefusedRenegotiationIsNamed) {
  const std::string reneg = describe_client_tls_error(ssl_error(SSL_R_NO_RENEGOTIATION));
  EXPECT_TRUE(has(reneg, "asked to renegotiate TLS")) << reneg;
  EXPECT_TRUE(has(reneg, "no renegotiation")) << reneg;
  EXPECT_TRUE(has(describe_client_tls_error(alert(SSL_AD_DECRYPT_ERROR)), "decrypt"));
  EXPECT_EQ(describe_client_tls_error(asio::error::eof), "");
  EXPECT_EQ(describe_client_tls_error(asio::error::connection_reset), "");
}

}  // namespace
}  // namespace mailtap::net
