#include "proxy/net/client_handshake_failure.hpp"

#include <openssl/ssl.h>

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

}  // namespace

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
                                              bool plain_text,
                                              const LocalCertificate& certificate) {
  // BoringSSL says WRONG_VERSION_NUMBER: true, and no help to anyone reading the record. The
  // text itself stays out of it (after STARTTLS it may be anything, a password included).
  if (plain_text)
    return "the client sent plain text where its TLS handshake was due; none of it was read as "
           "a command";
  const std::optional<std::uint8_t> alert = alert_in_clear ? alert_in_clear : alert_of(ec);
  if (!alert) return ec.message();
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
