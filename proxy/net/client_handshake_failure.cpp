#include "proxy/net/client_handshake_failure.hpp"

#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/ssl.h>

#include <asio/ssl/error.hpp>

#include "proxy/net/local_certificate_names.hpp"
#include "proxy/net/tls_alert.hpp"

#include "proxy/common/installed_docs.hpp"

namespace mailtap::net {

namespace {

// RFC 8446 §6.2: the alerts a client sends when it will not accept the server's certificate.
bool refuses_certificate(std::uint8_t alert) {
  switch (alert) {
    case SSL3_AD_BAD_CERTIFICATE:
    case SSL3_AD_UNSUPPORTED_CERTIFICATE:
    case SSL3_AD_CERTIFICATE_REVOKED:
    case SSL3_AD_CERTIFICATE_EXPIRED:
    case SSL3_AD_CERTIFICATE_UNKNOWN:
    case TLS1_AD_UNKNOWN_CA:
      return true;
    default:
      return false;
  }
}

// What a client must trust: the file mailtap presents when it is self-signed; else the CA that
// issued it, which not every client takes the leaf in place of (Python, swaks).
std::string what_to_trust(const LocalCertificate& c) {
  if (c.cert_path.empty()) return "mailtap's certificate";
  if (c.self_signed) return c.cert_path;
  return "the CA that issued " + c.cert_path + " (" + c.issuer +
         "), not that file itself, which some clients do not take as a trust anchor";
}

// Alerts a client also sends for a certificate it trusts but that does not name the host it
// connected to (Python: "bad certificate"; OpenSSL's default: "certificate unknown").
bool may_be_name_mismatch(std::uint8_t alert) {
  return alert == SSL3_AD_BAD_CERTIFICATE || alert == SSL3_AD_CERTIFICATE_UNKNOWN;
}

// What a client that accepts only RSA certificates needs of mailtap, when its key is not one.
std::string rsa_only_client(std::string_view key) {
  if (key.rfind("RSA", 0) == 0) return {};
  return "; a client that accepts only RSA certificates needs mailtap's --local-cert and "
         "--local-key with an RSA key";
}

// BoringSSL ended the handshake itself, the client's ClientHello having nothing in common with
// what mailtap accepts: `reason` (its code, kept in brackets) in words, "" for any other.
// mailtap's server context (tls_server_context.cpp) takes TLS 1.2 and later and BoringSSL's
// default suites and groups; what suits its certificate depends on the key (`key`).
std::string describe_mismatch(int reason, std::string_view key) {
  const std::string of_key = key.empty() ? std::string("mailtap's certificate")
                                         : "mailtap's certificate (" + std::string(key) + " key)";
  switch (reason) {
    case SSL_R_UNSUPPORTED_PROTOCOL:
      return "the client offered only TLS versions older than 1.2 (TLS 1.1, 1.0 or SSL): mailtap "
             "accepts TLS 1.2 and 1.3; set the client to TLS 1.2 or later (one that has none "
             "can still use mailtap without --local-tls, in plain text)";
    case SSL_R_NO_SHARED_CIPHER:
      return "the client offered no TLS 1.2 cipher suite that " + of_key +
             " can serve (mailtap has none with DHE or 3DES)" + rsa_only_client(key) +
             "; else set the client to TLS 1.3 or to ECDHE suites";
    case SSL_R_NO_SHARED_GROUP:
      return "the client offered no key exchange group mailtap accepts (X25519, P-256, P-384; "
             "no finite-field group such as ffdhe2048): set the client to offer X25519 or "
             "P-256";
    case SSL_R_NO_COMMON_SIGNATURE_ALGORITHMS:
      return "the client accepts no signature algorithm " + of_key + " can make" +
             rsa_only_client(key) + "; else let the client accept ECDSA signatures";
    default:
      return {};
  }
}

// The code of a handshake error BoringSSL raised itself, 0 for any other (an alert received,
// a system error).
int local_reason(const std::error_code& ec) {
  if (ec.category() != asio::error::get_ssl_category()) return 0;
  const auto code = static_cast<std::uint32_t>(ec.value());
  return ERR_GET_LIB(code) == ERR_LIB_SSL ? ERR_GET_REASON(code) : 0;
}

}  // namespace

std::string describe_key(const EVP_PKEY* key) {
  if (key == nullptr) return {};
  switch (EVP_PKEY_id(key)) {
    case EVP_PKEY_RSA:
      return "RSA " + std::to_string(EVP_PKEY_bits(key)) + "-bit";
    case EVP_PKEY_ED25519:
      return "Ed25519";
    case EVP_PKEY_EC: {
      const EC_GROUP* group = EC_KEY_get0_group(EVP_PKEY_get0_EC_KEY(key));
      const int nid = group == nullptr ? NID_undef : EC_GROUP_get_curve_name(group);
      if (nid == NID_X9_62_prime256v1) return "EC P-256";
      if (nid == NID_secp384r1) return "EC P-384";
      if (nid == NID_secp521r1) return "EC P-521";
      return "EC";
    }
    default:
      return std::to_string(EVP_PKEY_bits(key)) + "-bit";
  }
}

std::string describe_client_handshake_timeout(std::string_view limit, bool read_nothing,
                                              bool implicit) {
  const std::string within = " within " + std::string(limit) + " (--timeout-connect)";
  if (!read_nothing) return "the client did not finish its TLS handshake" + within;
  if (!implicit) return "the client sent nothing" + within + " after the 220 to its STARTTLS";
  return "the client sent nothing" + within +
         ": --local-tls implicit expects TLS from the first byte, and a plain-text (or STARTTLS) "
         "client waits for the greeting instead; set the client to SSL/TLS (implicit TLS, as "
         "for port 465), or run mailtap with --local-tls starttls";
}

std::string describe_client_handshake_failure(const std::error_code& ec,
                                              std::optional<std::uint8_t> alert_in_clear,
                                              bool plain_text, const LocalCertificate& certificate,
                                              std::string_view key) {
  // BoringSSL says WRONG_VERSION_NUMBER: true, and no help to anyone reading the record. The
  // text itself stays out of it (after STARTTLS it may be anything, a password included).
  if (plain_text)
    return "the client sent plain text where its TLS handshake was due; none of it was read as "
           "a command";
  const std::optional<std::uint8_t> alert = alert_in_clear ? alert_in_clear : alert_of(ec);
  if (!alert) {
    const int reason = local_reason(ec);
    const std::string words = describe_mismatch(reason, key);
    if (words.empty()) return ec.message();
    return words + " [" + ERR_reason_error_string(ERR_PACK(ERR_LIB_SSL, reason)) + "]";
  }
  const std::string name = SSL_alert_desc_string_long(*alert);
  if (!refuses_certificate(*alert))
    return "the client ended the handshake with TLS alert \"" + name + "\" (" + ec.message() + ")";
  std::string names;
  if (may_be_name_mismatch(*alert))
    names = ", and make it connect by a name the certificate holds (" +
            (certificate.cert_path.empty() ? std::string("localhost")
                                           : certificate_names(certificate)) +
            "), not by another address or name";
  return "the client refused mailtap's certificate (TLS alert \"" + name + "\"): make it trust " +
         what_to_trust(certificate) +
         " (msmtp tls_trust_file, curl --cacert, swaks --tls-ca-path, Python "
         "ssl.create_default_context(cafile=...); see " +
         documentation_path("proxy.md") + ", \"The certificate\")" + names;
}

}  // namespace mailtap::net
