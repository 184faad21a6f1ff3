// Strict RFC 4648 §4 base64 (standard alphabet, padded). SASL payloads (RFC 4954) use exactly
// this encoding; anything else on the wire is treated as undecodable so the redactor denies it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mailtap::smtp {

std::string base64_encode(std::string_view bytes);

// nullopt unless `text` is canonical base64: length a multiple of 4, only the standard alphabet,
// at most two '=' and only at the end, zero pad bits, no whitespace. "" decodes to "".
std::optional<std::string> base64_decode(std::string_view text);

// Same rules, decoding into `out` without reallocating after the first size-up, so a caller
// holding a secret can wipe `out` and know no other copy exists. On failure `out` is wiped
// and left empty (a rejected line may still have been mostly a secret).
bool base64_decode_into(std::string_view text, std::string& out);

}  // namespace mailtap::smtp
