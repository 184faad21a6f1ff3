#include "proxy/net/client_handshake_failure.hpp"

#include <openssl/ssl.h>

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

}  // namespace

std::string describe_client_handshake_failure(const std::error_code& ec,
                                              std::optional<std::uint8_t> alert_in_clear,
                                              bool plain_text, std::string_view certificate) {
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
  const std::string file =
      certificate.empty() ? std::string("mailtap's certificate") : std::string(certificate);
  return "the client refused mailtap's certificate (TLS alert \"" + name + "\"): make it trust " +
         file +
         " (msmtp tls_trust_file, curl --cacert, swaks --tls-ca-path, Python "
         "ssl.create_default_context(cafile=...); see " +
         documentation_path("proxy.md") + ", \"The certificate\")";
}

}  // namespace mailtap::net
