#include "proxy/net/octets_after_starttls.hpp"

#include <openssl/ssl.h>

#include "proxy/common/terminal_escape.hpp"

namespace mailtap::net {

namespace {

// A TLS record header (RFC 8446 5.1): a content type from change_cipher_spec (20) to
// heartbeat (24), then a legacy version 3.0 to 3.4.
bool tls_record(std::string_view o) {
  if (o.size() < 3) return false;
  const auto type = static_cast<unsigned char>(o[0]);
  const auto major = static_cast<unsigned char>(o[1]);
  const auto minor = static_cast<unsigned char>(o[2]);
  return type >= 20 && type <= 24 && major == 3 && minor <= 4;
}

// The alert a whole alert record holds ("handshake failure"); "" if `o` is not one.
std::string alert_in(std::string_view o) {
  constexpr unsigned char alert = 21;
  if (o.size() < 7 || static_cast<unsigned char>(o[0]) != alert || o[3] != 0 || o[4] != 2)
    return {};
  return SSL_alert_desc_string_long(static_cast<unsigned char>(o[6]));
}

}  // namespace

OctetsAfterStarttls describe_octets_after_starttls(std::string_view octets,
                                                   const std::string& label) {
  OctetsAfterStarttls out;
  const std::string count = std::to_string(octets.size());
  const bool cut = octets.size() > kQuotedOctetsAfterStarttls;
  out.note = count + " octets followed the 220 reply to STARTTLS before the handshake: \"" +
             escape_line(octets.substr(0, kQuotedOctetsAfterStarttls)) + "\"" +
             (cut ? " (the first " + std::to_string(kQuotedOctetsAfterStarttls) + ")" : "");
  if (const std::string alert = alert_in(octets); !alert.empty()) {
    out.reason = label + " sent a TLS alert (\"" + alert +
                 "\") before mailtap's handshake began: its TLS configuration cannot start a "
                 "handshake at all (its TLS library refused before reading mailtap's "
                 "ClientHello, as OpenSSL does when its TLS versions, ciphers or certificate do "
                 "not fit its settings); its administrator must fix it (the server's log says "
                 "why)";
  } else if (tls_record(octets)) {
    out.reason = label +
                 " sent a TLS record before mailtap's handshake began, where it must wait for "
                 "mailtap's ClientHello: its TLS set-up is broken; its administrator must fix "
                 "it (the server's log says why)";
  } else {
    out.reason = label + " sent " + count +
                 " unexpected octets after its 220 reply to STARTTLS: possible STARTTLS command "
                 "injection; closing";
  }
  return out;
}

}  // namespace mailtap::net
