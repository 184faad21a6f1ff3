// The client's SASL messages, byte for byte, before base64: what mailtap sends when it
// authenticates itself, what `mailtap encode` prints, and what --assist-auth builds from a user
// name and password typed in clear. Each returns a Secret sized exactly.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/smtp/sasl_mechanism.hpp"
#include "proxy/smtp/secret.hpp"

namespace mailtap::smtp {

// RFC 4616: authzid NUL authcid NUL passwd ("\0alice\0secret" with an empty authzid).
Secret plain_response(std::string_view authzid, std::string_view user, std::string_view password);

// Google's XOAUTH2: "user=" USER ^A "auth=Bearer " TOKEN ^A ^A. No GS2 header, no host/port.
Secret xoauth2_response(std::string_view user, std::string_view token);

// RFC 7628 §3.1: "n,a=" saslname(USER) "," ^A "host=" H ^A "port=" P ^A "auth=Bearer " T ^A ^A.
// host=/port= are left out when `host` is empty / `port` is nullopt (they are optional; they
// name the server the client connected to, which for mailtap is the upstream).
Secret oauthbearer_response(std::string_view user, std::string_view host,
                            std::optional<std::uint16_t> port, std::string_view token);

// RFC 2195: USER SP lower-case hex HMAC-MD5(key = password, text = decoded challenge).
Secret cram_md5_response(std::string_view user, std::string_view password,
                         std::string_view challenge);

// RFC 6750 §2.1 b64token: what an access token may contain. Anything else (a space, ^A, a
// newline) would corrupt or inject into the XOAUTH2/OAUTHBEARER message, so it is refused.
bool is_bearer_token(std::string_view token);

// Why `user` and `secret` cannot be sent with `m`, or "" when they can. Printable; never
// quotes the secret.
std::string credentials_problem(Mechanism m, std::string_view user, std::string_view secret);

}  // namespace mailtap::smtp
