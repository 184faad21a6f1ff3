#include "proxy/net/tls_alert.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <asio/ssl/error.hpp>

namespace mailtap::net {

namespace {

// What a server answers to a client whose certificate it refuses, or that presents none where
// it requires one: TLS 1.3 has an alert of its own for the missing one (RFC 8446 6.2); over
// TLS 1.2 OpenSSL sends handshake_failure, and other servers one of the certificate alerts.
bool refuses_certificate(std::uint8_t alert) {
  switch (alert) {
    case SSL3_AD_HANDSHAKE_FAILURE:
    case SSL3_AD_BAD_CERTIFICATE:
    case SSL3_AD_UNSUPPORTED_CERTIFICATE:
    case SSL3_AD_CERTIFICATE_REVOKED:
    case SSL3_AD_CERTIFICATE_EXPIRED:
    case SSL3_AD_CERTIFICATE_UNKNOWN:
    case TLS1_AD_UNKNOWN_CA:
    case TLS1_AD_ACCESS_DENIED:
    case TLS1_AD_DECRYPT_ERROR:
    case TLS1_AD_CERTIFICATE_REQUIRED:
      return true;
    default:
      return false;
  }
}

std::string quoted_alert(std::uint8_t alert) {
  return "TLS alert \"" + std::string(SSL_alert_desc_string_long(alert)) + "\"";
}

constexpr const char* give_one =
    "give it one with --client-cert FILE (and --client-key FILE unless the key is in FILE)";

// What to check of a certificate the server refused, by what the server said (`alert`, if it
// said it with one).
std::string what_to_check(const ClientCertificate& c, std::optional<std::uint8_t> alert) {
  const std::string validity =
      c.validity_problem.empty() ? std::string() : "; and " + c.validity_problem + ": renew it";
  // The file is named once, by describe() before this: its path may be long, and the whole
  // explanation has to fit reply lines of 512 octets.
  const std::string chain =
      "the file holds the intermediate certificates after it (it holds " +
      (c.intermediates == 0 ? std::string("none") : std::to_string(c.intermediates)) + ")";
  switch (alert.value_or(0)) {
    case TLS1_AD_UNKNOWN_CA:
      return "it does not trust the CA that issued it (" + c.leaf_facts.issuer +
             "): check that the certificate comes from the CA the server's administrator named, "
             "and that " +
             chain + validity;
    case SSL3_AD_CERTIFICATE_EXPIRED:
      return c.validity_problem.empty()
                 ? "it takes it for expired (valid until " + c.leaf_facts.not_after +
                       "): check the clocks, or renew it"
                 : c.validity_problem + ": renew it";
    case SSL3_AD_CERTIFICATE_REVOKED:
      return "its issuer (" + c.leaf_facts.issuer + ") revoked it: get a new one" + validity;
    case TLS1_AD_ACCESS_DENIED:
      return "it knows the certificate but does not let it in: ask the server's administrator to "
             "authorise it (SHA-256 " +
             c.leaf_facts.sha256_hex + ")" + validity;
    default:
      return "check that the server trusts its issuer (" + c.leaf_facts.issuer + "), that " +
             chain +
             ", that it is the certificate the administrator registered for you, and that it is "
             "meant for client authentication (extendedKeyUsage clientAuth)" +
             validity;
  }
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

std::string describe_client_tls_error(const std::error_code& ec) {
  if (ec.category() != asio::error::get_ssl_category()) return {};
  const auto code = static_cast<std::uint32_t>(ec.value());
  if (ERR_GET_LIB(code) == ERR_LIB_SSL && ERR_GET_REASON(code) == SSL_R_NO_RENEGOTIATION)
    return "the client asked to renegotiate TLS (a new handshake inside the connection, "
           "TLS 1.2): mailtap refuses renegotiation (alert \"no renegotiation\"), which ended "
           "the connection; a client that needs new keys uses TLS 1.3's KeyUpdate";
  if (const std::optional<std::uint8_t> alert = alert_of(ec))
    return "the client ended the connection with a " + quoted_alert(*alert);
  return "the client's TLS connection failed: " + ec.message();
}

std::string describe_upstream_alert(const std::error_code& ec, bool certificate_requested,
                                    const ClientCertificate* client_certificate, bool sent_sni) {
  const std::optional<std::uint8_t> alert = alert_of(ec);
  if (!alert) return {};
  const std::string quoted = quoted_alert(*alert);
  if (client_certificate != nullptr && certificate_requested && refuses_certificate(*alert))
    return "refused mailtap's client certificate " + client_certificate->describe() + " (" +
           quoted + "): " + what_to_check(*client_certificate, alert);
  if (client_certificate == nullptr && (*alert == TLS1_AD_CERTIFICATE_REQUIRED ||
                                        (certificate_requested && refuses_certificate(*alert))))
    return "requires a client certificate (" + quoted +
           (*alert == TLS1_AD_CERTIFICATE_REQUIRED ? "" : " after asking for one") +
           "), and mailtap presents none: " + give_one +
           ", or use a server or port that accepts clients without a certificate (submission "
           "with AUTH)";
  switch (*alert) {
    case SSL3_AD_HANDSHAKE_FAILURE:
      // The alert cannot tell a server without a certificate (a chain file gone after a
      // renewal: Postfix still offers STARTTLS and logs "no shared cipher") from one that has
      // nothing in common with mailtap; the first is the commoner.
      return "ended the TLS handshake (" + quoted +
             "): either it has no usable certificate (a certificate or key file missing or "
             "unreadable: its log says so), or it accepts none of the TLS versions, cipher "
             "suites or signature algorithms mailtap offers (TLS 1.2 or later, no 3DES, no SHA-1 "
             "signatures, and no "
             "certificate with an RSA-PSS or Ed448 key, which mailtap's TLS library cannot "
             "verify); openssl s_client -starttls smtp shows what it accepts";
    case TLS1_AD_PROTOCOL_VERSION:
      return "refused the TLS version (" + quoted +
             "): it does not speak TLS 1.2 or later, the oldest mailtap accepts";
    case TLS1_AD_INSUFFICIENT_SECURITY:
      return "wants stronger TLS cipher suites than mailtap offered (" + quoted + ")";
    case TLS1_AD_UNRECOGNIZED_NAME:
      if (!sent_sni)
        return "wants a server name in the TLS handshake (" + quoted +
               "), and mailtap sent none: the upstream is an address, and SNI carries only "
               "names; give it one with --tls-name NAME";
      return "does not know the name mailtap sent as SNI (" + quoted +
             "): use --tls-name with a name it serves";
    default:
      return "ended TLS with " + quoted + " (" + ec.message() + ")";
  }
}

std::string describe_refusal_after_certificate_request(
    const ClientCertificate* client_certificate) {
  if (client_certificate == nullptr)
    return std::string(
               "asked for a client certificate in the TLS handshake, and mailtap "
               "presented none: ") +
           give_one;
  return "ended the session after mailtap presented its client certificate " +
         client_certificate->describe() + ": " + what_to_check(*client_certificate, std::nullopt);
}

}  // namespace mailtap::net
