#include "proxy/net/tls_alert.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <asio/ssl/error.hpp>

namespace mailtap::net {

namespace {

// What a server answers to a client that presents no certificate where it requires one:
// TLS 1.3 has an alert of its own (RFC 8446 6.2); over TLS 1.2 OpenSSL sends
// handshake_failure, and other servers one of the certificate alerts.
bool refuses_missing_certificate(std::uint8_t alert) {
  switch (alert) {
    case SSL3_AD_HANDSHAKE_FAILURE:
    case SSL3_AD_BAD_CERTIFICATE:
    case SSL3_AD_UNSUPPORTED_CERTIFICATE:
    case SSL3_AD_CERTIFICATE_UNKNOWN:
    case TLS1_AD_UNKNOWN_CA:
    case TLS1_AD_ACCESS_DENIED:
      return true;
    default:
      return false;
  }
}

std::string quoted_alert(std::uint8_t alert) {
  return "TLS alert \"" + std::string(SSL_alert_desc_string_long(alert)) + "\"";
}

}  // namespace

std::optional<std::uint8_t> alert_of(const std::error_code& ec) {
  if (ec.category() != asio::error::get_ssl_category()) return std::nullopt;
  const auto code = static_cast<std::uint32_t>(ec.value());
  const int reason = ERR_GET_REASON(code);
  if (ERR_GET_LIB(code) != ERR_LIB_SSL || reason < SSL_AD_REASON_OFFSET ||
      reason >= SSL_AD_REASON_OFFSET + 256)
    return std::nullopt;
  return static_cast<std::uint8_t>(reason - SSL_AD_REASON_OFFSET);
}

std::string describe_upstream_alert(const std::error_code& ec, bool certificate_requested) {
  const std::optional<std::uint8_t> alert = alert_of(ec);
  if (!alert) return {};
  const std::string quoted = quoted_alert(*alert);
  if (*alert == TLS1_AD_CERTIFICATE_REQUIRED ||
      (certificate_requested && refuses_missing_certificate(*alert)))
    return "requires a client certificate (" + quoted +
           (*alert == TLS1_AD_CERTIFICATE_REQUIRED ? "" : " after asking for one") +
           "), and mailtap presents none: mailtap has no client-certificate option; use a "
           "server or port that accepts clients without a certificate (submission with AUTH), "
           "or ask the server's administrator";
  switch (*alert) {
    case SSL3_AD_HANDSHAKE_FAILURE:
      return "ended the TLS handshake (" + quoted +
             "): it accepts none of the TLS versions, cipher suites or signature algorithms "
             "mailtap offers (TLS 1.2 or later, no 3DES, no SHA-1 signatures); openssl s_client "
             "-starttls smtp shows what it accepts";
    case TLS1_AD_PROTOCOL_VERSION:
      return "refused the TLS version (" + quoted +
             "): it does not speak TLS 1.2 or later, the oldest mailtap accepts";
    case TLS1_AD_INSUFFICIENT_SECURITY:
      return "wants stronger TLS cipher suites than mailtap offered (" + quoted + ")";
    case TLS1_AD_UNRECOGNIZED_NAME:
      return "does not know the name mailtap sent as SNI (" + quoted +
             "): use --tls-name with a name it serves";
    default:
      return "ended TLS with " + quoted + " (" + ec.message() + ")";
  }
}

}  // namespace mailtap::net
