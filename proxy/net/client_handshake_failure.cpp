#include "proxy/net/client_handshake_failure.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <asio/ssl/error.hpp>

namespace mailtap::net {

namespace {

// The alert a TLS error code stands for: BoringSSL reports an alert received from the peer
// as the reason SSL_AD_REASON_OFFSET + its AlertDescription.
std::optional<std::uint8_t> alert_of(const std::error_code& ec) {
  if (ec.category() != asio::error::get_ssl_category()) return std::nullopt;
  const auto code = static_cast<std::uint32_t>(ec.value());
  const int reason = ERR_GET_REASON(code);
  if (ERR_GET_LIB(code) != ERR_LIB_SSL || reason < SSL_AD_REASON_OFFSET ||
      reason >= SSL_AD_REASON_OFFSET + 256)
    return std::nullopt;
  return static_cast<std::uint8_t>(reason - SSL_AD_REASON_OFFSET);
}

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
         "ssl.create_default_context(cafile=...); see docs/proxy.md, \"The certificate\")";
}

}  // namespace mailtap::net
