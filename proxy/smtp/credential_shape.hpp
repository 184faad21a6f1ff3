// What a SASL credential looks like once it has left its AUTH exchange: a line a person pasted
// where the server reads a command (the dialogue keeps it out of the record), or bytes already
// in the record (`mailtap audit` reports them). Pure functions over bytes.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace mailtap::smtp {

// True if `decoded` is an RFC 4616 PLAIN message: authzid NUL authcid NUL passwd with non-empty
// authcid and passwd and no control characters. `user` gets the authcid.
bool is_plain_message(std::string_view decoded, std::string& user);

// True if `s` holds an OAuth bearer token in clear ("auth=Bearer " followed by something other
// than a redaction or the end of the field); `at` gets where the marker starts.
bool find_bearer_token(std::string_view s, std::size_t& at);

// A base64 alphabet character (RFC 4648 §4, padding included).
bool is_base64_char(char c);

// True if `line` (one client line without its CRLF) is one base64 token that decodes to a PLAIN
// message or to XOAUTH2/OAUTHBEARER with a bearer token: a credential whatever its position.
bool is_encoded_credential(std::string_view line);

}  // namespace mailtap::smtp
