// What the record and the log say when a client's TLS handshake with mailtap fails
// (--local-tls): a client that refuses mailtap's certificate is told apart from any other
// failure, over TLS 1.2 (BoringSSL names the alert) and TLS 1.3 (the alert came in clear and
// BoringSSL says only BAD_PACKET_LENGTH), and the message says which file to trust.
#include <openssl/bn.h>
#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>

#include <gtest/gtest.h>

#include <asio/error.hpp>
#include <asio/ssl/error.hpp>
#include <string>

#include "proxy/net/client_handshake_failure.hpp"

namespace mailtap::net {
namespace {

std::error_code ssl_error(int reason) {
  return {static_cast<int>(ERR_PACK(ERR_LIB_SSL, reason)), asio::error::get_ssl_category()};
}

constexpr const char* kCert = "/home/me/.config/mailtap/local-tls-cert.pem";

// mailtap's own certificate, as it makes it.
LocalCertificate self_made() {
  LocalCertificate c;
  c.cert_path = kCert;
  c.dns_names = {"localhost"};
  c.ip_addresses = {"127.0.0.1", "::1"};
  return c;
}

const LocalCertificate kSelfMade = self_made();

TEST(ClientHandshakeFailure, Tls13AlertInClearBehindBadPacketLengthPointsAtTrust) {
  const std::string d = describe_client_handshake_failure(ssl_error(SSL_R_BAD_PACKET_LENGTH),
                                                          TLS1_AD_UNKNOWN_CA, false, kSelfMade);
  EXPECT_EQ(d.find("BAD_PACKET_LENGTH"), std::string::npos) << d;
  EXPECT_EQ(d.rfind("the client refused mailtap's certificate (TLS alert \"unknown CA\")", 0), 0u)
      << d;
  EXPECT_NE(d.find(std::string("make it trust ") + kCert), std::string::npos) << d;
  EXPECT_NE(d.find("docs/proxy.md"), std::string::npos) << d;
}

TEST(ClientHandshakeFailure, Tls12AlertNamedByBoringSslPointsAtTrustToo) {
  for (int reason :
       {SSL_R_TLSV1_ALERT_UNKNOWN_CA, SSL_R_SSLV3_ALERT_BAD_CERTIFICATE,
        SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN, SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED}) {
    const std::string d =
        describe_client_handshake_failure(ssl_error(reason), std::nullopt, false, kSelfMade);
    EXPECT_EQ(d.rfind("the client refused mailtap's certificate", 0), 0u) << d;
    EXPECT_NE(d.find(kCert), std::string::npos) << d;
  }
}

TEST(ClientHandshakeFailure, OtherAlertsAreNamedWithoutTheTrustHint) {
  const std::string d = describe_client_handshake_failure(
      ssl_error(SSL_R_TLSV1_ALERT_PROTOCOL_VERSION), std::nullopt, false, kSelfMade);
  EXPECT_EQ(d.rfind("the client ended the handshake with TLS alert \"protocol version\"", 0), 0u)
      << d;
  EXPECT_EQ(d.find(kCert), std::string::npos) << d;
}

TEST(ClientHandshakeFailure, FailuresWithoutAnAlertKeepTheLibrarysWords) {
  const std::error_code wrong_version = ssl_error(SSL_R_WRONG_VERSION_NUMBER);
  EXPECT_EQ(describe_client_handshake_failure(wrong_version, std::nullopt, false, kSelfMade),
            wrong_version.message());
  const std::error_code truncated = asio::ssl::error::stream_truncated;
  EXPECT_EQ(describe_client_handshake_failure(truncated, std::nullopt, false, kSelfMade),
            truncated.message());
}

// A client that sent a command where its handshake was due (after the 220 to STARTTLS, or on
// the implicit-TLS port): said in words, and without the text, which may be a password.
TEST(ClientHandshakeFailure, PlainTextIsSaidInWordsNotInTheLibrarys) {
  const std::string d = describe_client_handshake_failure(ssl_error(SSL_R_WRONG_VERSION_NUMBER),
                                                          std::nullopt, true, kSelfMade);
  EXPECT_EQ(d,
            "the client sent plain text where its TLS handshake was due; none of it was read as "
            "a command");
}

TEST(ClientHandshakeFailure, WithoutAFileNameItStillSaysWhatToTrust) {
  const std::string d = describe_client_handshake_failure(
      ssl_error(SSL_R_BAD_PACKET_LENGTH), TLS1_AD_UNKNOWN_CA, false, LocalCertificate{});
  EXPECT_NE(d.find("make it trust mailtap's certificate"), std::string::npos) << d;
}

// A client that trusts the certificate but connected by an address or name it does not hold
// (Python to [::1] with the certificate for localhost and 127.0.0.1) says "bad certificate"
// (OpenSSL's default alert: "certificate unknown"): the hint names the check by name, and the
// names the certificate holds, beside trust.
TEST(ClientHandshakeFailure, BadCertificateAlsoPointsAtTheNamesTheCertificateHolds) {
  for (std::uint8_t alert : {SSL3_AD_BAD_CERTIFICATE, SSL3_AD_CERTIFICATE_UNKNOWN}) {
    const std::string d = describe_client_handshake_failure(ssl_error(SSL_R_BAD_PACKET_LENGTH),
                                                            alert, false, kSelfMade);
    EXPECT_NE(d.find(std::string("make it trust ") + kCert), std::string::npos) << d;
    EXPECT_NE(d.find("and make it connect by a name the certificate holds (localhost, "
                     "127.0.0.1, ::1), not by another address or name"),
              std::string::npos)
        << d;
  }
  // "unknown CA" is about trust alone.
  const std::string d = describe_client_handshake_failure(ssl_error(SSL_R_BAD_PACKET_LENGTH),
                                                          TLS1_AD_UNKNOWN_CA, false, kSelfMade);
  EXPECT_EQ(d.find("connect by a name"), std::string::npos) << d;
}

// A --local-cert a CA issued: not every client takes the leaf as a trust anchor (Python and
// swaks do not), so the hint names the CA to trust, by its subject.
TEST(ClientHandshakeFailure, ACertificateACaIssuedPointsAtThatCa) {
  LocalCertificate issued;
  issued.cert_path = "/etc/mailtap/server.pem";
  issued.self_signed = false;
  issued.issuer = "CN=Example Root,O=Example";
  issued.dns_names = {"mail.example.test"};
  const std::string d = describe_client_handshake_failure(ssl_error(SSL_R_BAD_PACKET_LENGTH),
                                                          TLS1_AD_UNKNOWN_CA, false, issued);
  EXPECT_NE(d.find("make it trust the CA that issued /etc/mailtap/server.pem (CN=Example "
                   "Root,O=Example), not that file itself"),
            std::string::npos)
      << d;
}

// A ClientHello with nothing in common with what mailtap accepts: BoringSSL's own code (which
// names neither side) becomes words that say what mailtap takes and what to do, the code kept
// in brackets for a search.
TEST(ClientHandshakeFailure, AnOldTlsVersionSaysWhatMailtapAccepts) {
  const std::string d = describe_client_handshake_failure(
      ssl_error(SSL_R_UNSUPPORTED_PROTOCOL), std::nullopt, false, kSelfMade, "EC P-256");
  EXPECT_EQ(d.rfind("the client offered only TLS versions older than 1.2", 0), 0u) << d;
  EXPECT_NE(d.find("mailtap accepts TLS 1.2 and 1.3"), std::string::npos) << d;
  EXPECT_NE(d.find("set the client to TLS 1.2 or later"), std::string::npos) << d;
  EXPECT_EQ(d.substr(d.size() - 23), " [UNSUPPORTED_PROTOCOL]") << d;
  EXPECT_EQ(d.find("OPENSSL_internal"), std::string::npos) << d;
  EXPECT_EQ(d.find(kCert), std::string::npos) << d;
}

TEST(ClientHandshakeFailure, NoSharedCipherNamesTheKeyAndTheRsaWayOut) {
  const std::string ec = describe_client_handshake_failure(
      ssl_error(SSL_R_NO_SHARED_CIPHER), std::nullopt, false, kSelfMade, "EC P-256");
  EXPECT_EQ(ec.rfind("the client offered no TLS 1.2 cipher suite that mailtap's certificate "
                     "(EC P-256 key) can serve",
                     0),
            0u)
      << ec;
  EXPECT_NE(ec.find("--local-cert and --local-key with an RSA key"), std::string::npos) << ec;
  EXPECT_EQ(ec.substr(ec.size() - 19), " [NO_SHARED_CIPHER]") << ec;
  // An RSA key already: no advice to get one.
  const std::string rsa = describe_client_handshake_failure(
      ssl_error(SSL_R_NO_SHARED_CIPHER), std::nullopt, false, kSelfMade, "RSA 2048-bit");
  EXPECT_NE(rsa.find("(RSA 2048-bit key)"), std::string::npos) << rsa;
  EXPECT_EQ(rsa.find("with an RSA key"), std::string::npos) << rsa;
}

TEST(ClientHandshakeFailure, NoSharedGroupOrSignatureAlgorithmIsSaidInWords) {
  const std::string group = describe_client_handshake_failure(
      ssl_error(SSL_R_NO_SHARED_GROUP), std::nullopt, false, kSelfMade, "EC P-256");
  EXPECT_NE(group.find("no key exchange group mailtap accepts (X25519, P-256, P-384"),
            std::string::npos)
      << group;
  EXPECT_EQ(group.substr(group.size() - 18), " [NO_SHARED_GROUP]") << group;
  const std::string sigalg = describe_client_handshake_failure(
      ssl_error(SSL_R_NO_COMMON_SIGNATURE_ALGORITHMS), std::nullopt, false, kSelfMade, "");
  EXPECT_EQ(sigalg.rfind("the client accepts no signature algorithm mailtap's certificate can "
                         "make",
                         0),
            0u)
      << sigalg;
  EXPECT_NE(sigalg.find("[NO_COMMON_SIGNATURE_ALGORITHMS]"), std::string::npos) << sigalg;
}

// --timeout-connect ended a client's handshake: a client that sent nothing on the implicit
// port is a plain-text one waiting for the greeting, told how to set it (or mailtap).
TEST(ClientHandshakeFailure, ATimeoutSaysWhetherTheClientSentAnything) {
  const std::string silent = describe_client_handshake_timeout("30.0s", true, true);
  EXPECT_EQ(silent.rfind("the client sent nothing within 30.0s (--timeout-connect): --local-tls "
                         "implicit expects TLS from the first byte",
                         0),
            0u)
      << silent;
  EXPECT_NE(silent.find("set the client to SSL/TLS"), std::string::npos) << silent;
  EXPECT_NE(silent.find("run mailtap with --local-tls starttls"), std::string::npos) << silent;
  EXPECT_EQ(describe_client_handshake_timeout("2.0s", true, false),
            "the client sent nothing within 2.0s (--timeout-connect) after the 220 to its "
            "STARTTLS");
  EXPECT_EQ(describe_client_handshake_timeout("2.0s", false, true),
            "the client did not finish its TLS handshake within 2.0s (--timeout-connect)");
}

TEST(ClientHandshakeFailure, KeysAreNamedByTypeAndSize) {
  bssl::UniquePtr<EVP_PKEY> ec(EVP_PKEY_new());
  bssl::UniquePtr<EC_KEY> ec_key(EC_KEY_new_by_curve_name(NID_X9_62_prime256v1));
  ASSERT_TRUE(EC_KEY_generate_key(ec_key.get()));
  ASSERT_TRUE(EVP_PKEY_set1_EC_KEY(ec.get(), ec_key.get()));
  EXPECT_EQ(describe_key(ec.get()), "EC P-256");
  bssl::UniquePtr<EVP_PKEY> rsa(EVP_PKEY_new());
  bssl::UniquePtr<RSA> rsa_key(RSA_new());
  bssl::UniquePtr<BIGNUM> e(BN_new());
  ASSERT_TRUE(BN_set_word(e.get(), RSA_F4));
  ASSERT_TRUE(RSA_generate_key_ex(rsa_key.get(), 2048, e.get(), nullptr));
  ASSERT_TRUE(EVP_PKEY_set1_RSA(rsa.get(), rsa_key.get()));
  EXPECT_EQ(describe_key(rsa.get()), "RSA 2048-bit");
  EXPECT_EQ(describe_key(nullptr), "");
}

}  // namespace
}  // namespace mailtap::net
