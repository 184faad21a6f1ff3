// Why a client's TLS handshake with mailtap failed (--local-tls), in words that say what to do.
// The usual cause is a client that does not trust mailtap's certificate. It says so with an
// alert (unknown_ca, bad_certificate, ...), which BoringSSL reports by name over TLS 1.2
// (TLSV1_ALERT_UNKNOWN_CA). Over TLS 1.3 an OpenSSL client (curl, swaks, Python, openssl
// s_client) sends that alert before it has its handshake keys, in clear where mailtap expects
// an encrypted record, and BoringSSL reports only BAD_PACKET_LENGTH: the alert itself comes from
// the record read (TlsStream::handshake_alert()).
#pragma once

#include <openssl/base.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

#include "proxy/net/local_certificate.hpp"

namespace mailtap::net {

// `ec`: what the handshake returned; `alert_in_clear`: the AlertDescription the handshake
// stopped on, if it read one in clear; `plain_text`: the handshake read text, not a TLS record
// (TlsStream::handshake_read_plain_text: a client that sent a command, not its ClientHello);
// `certificate`: the one mailtap presents (its cert_path may be empty: not known). A refusal
// names what clients must trust: the file when it is self-signed, else the CA that issued it;
// a "bad certificate" or "certificate unknown" also what a client checks beside trust, that it
// connected by a name the certificate holds. `key`: mailtap's key as describe_key() words it
// (may be empty). A ClientHello with nothing in common with what mailtap accepts (a TLS
// version, a cipher suite, a group, a signature algorithm) is said in words, BoringSSL's code
// in brackets. Any other failure is described as BoringSSL or the system describes it.
std::string describe_client_handshake_failure(const std::error_code& ec,
                                              std::optional<std::uint8_t> alert_in_clear,
                                              bool plain_text, const LocalCertificate& certificate,
                                              std::string_view key = {});

// The handshake did not end within --timeout-connect (`limit`, as the log writes it).
// `read_nothing`: not one octet came from the client; `implicit`: --local-tls implicit, the
// handshake due from the first byte (else after the 220 to the client's STARTTLS). A client
// that sends nothing on an implicit port is most likely a plain-text one awaiting the greeting:
// the words say how to set it, or mailtap, instead.
std::string describe_client_handshake_timeout(std::string_view limit, bool read_nothing,
                                              bool implicit);

// A key's type for these messages: "EC P-256", "RSA 2048-bit", "Ed25519", else its size
// ("256-bit"); "" for none.
std::string describe_key(const EVP_PKEY* key);

}  // namespace mailtap::net
