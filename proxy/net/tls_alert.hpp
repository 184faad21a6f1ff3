// What a TLS alert from the peer means, in words. BoringSSL reports an alert it received as an
// error code (SSLV3_ALERT_HANDSHAKE_FAILURE, TLSV1_ALERT_CERTIFICATE_REQUIRED), which tells a
// user at telnet neither the cause nor what to do about it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <system_error>

namespace mailtap::net {

// The AlertDescription a TLS error code stands for, when it reports an alert received from
// the peer (BoringSSL's reason SSL_AD_REASON_OFFSET + the description); nullopt otherwise.
std::optional<std::uint8_t> alert_of(const std::error_code& ec);

// Why the upstream server ended TLS with `ec` (in its handshake, or later: over TLS 1.3 a
// server refuses mailtap's missing client certificate after mailtap's handshake is done), as
// a phrase to follow its host:port: "requires a client certificate (TLS alert \"certificate
// required\"), and mailtap presents none: ...". `certificate_requested`: the server sent a
// CertificateRequest (TlsStream::certificate_requested), which explains the alerts a server
// sends to a client that presents none. Empty when `ec` is no alert from the server.
std::string describe_upstream_alert(const std::error_code& ec, bool certificate_requested);

}  // namespace mailtap::net
