// What a TLS alert from the peer means, in words. BoringSSL reports an alert it received as an
// error code (SSLV3_ALERT_HANDSHAKE_FAILURE, TLSV1_ALERT_CERTIFICATE_REQUIRED), which tells a
// user at telnet neither the cause nor what to do about it. Also the words for a server that
// asked for a client certificate and then ended the session in SMTP instead (Postfix's
// smtpd_tls_req_ccert: "421 4.7.1 ... Client certificate not trusted").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <system_error>

#include "proxy/net/client_certificate.hpp"

namespace mailtap::net {

// The AlertDescription a TLS error code stands for, when it reports an alert received from
// the peer (BoringSSL's reason SSL_AD_REASON_OFFSET + the description); nullopt otherwise.
std::optional<std::uint8_t> alert_of(const std::error_code& ec);

// Why the upstream server ended TLS with `ec` (in its handshake, or later: over TLS 1.3 a
// server refuses mailtap's client certificate, or its absence, after mailtap's handshake is
// done), as a phrase to follow its host:port: "requires a client certificate (TLS alert
// \"certificate required\"), and mailtap presents none: give it one with --client-cert ...".
// `certificate_requested`: the server sent a CertificateRequest (TlsStream::certificate_requested),
// which explains the alerts a server sends to a client whose certificate it refuses or misses;
// `client_certificate`: the one mailtap presents then (--client-cert), nullptr if none;
// `sent_sni`: mailtap named the server in its ClientHello (not for an address: RFC 6066 3).
// Empty when `ec` is no alert from the server.
std::string describe_upstream_alert(const std::error_code& ec, bool certificate_requested,
                                    const ClientCertificate* client_certificate, bool sent_sni);

// Why a client's TLS connection failed after its handshake (`ec`: the read's TLS error), for a
// note in the record: a renegotiation it asked for (a TLS 1.2 ClientHello after the handshake,
// which mailtap refuses with the alert no_renegotiation), an alert it sent, or BoringSSL's
// reason. Empty when `ec` is no TLS error (an EOF, a close_notify, a reset).
std::string describe_client_tls_error(const std::error_code& ec);

// What mailtap adds to a 421 with which a server that asked for a client certificate in the
// handshake ends the session before any other reply, after its host:port: "asked for a client
// certificate in the TLS handshake and mailtap presented none: ...", or that it ended the
// session after mailtap presented `client_certificate`, and what to check.
std::string describe_refusal_after_certificate_request(const ClientCertificate* client_certificate);

}  // namespace mailtap::net
