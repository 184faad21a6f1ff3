// Strict RFC 4648 §4 base64 (standard alphabet, padded). SASL payloads (RFC 4954) use exactly
// this encoding; anything else on the wire is treated as undecodable so the redactor denies it.
// The coding itself is BoringSSL's (constant time in the data, so secrets do not leak through
// timing); the strictness checks on top keep decode(encode(x)) == x a bijection.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/smtp/secret.hpp"

namespace mailtap::smtp {

std::string base64_encode(std::string_view bytes);
// Length of the encoding of `n` bytes.
constexpr std::size_t base64_encoded_size(std::size_t n) {
  return (n + 2) / 3 * 4;
}
// Appends the encoding of `bytes` to `out`: false, with `out` unchanged, when it does not fit
// in out's capacity. No intermediate copy of the encoding is left unwiped.
bool base64_encode_append(std::string_view bytes, Secret& out);

// nullopt unless `text` is canonical base64: length a multiple of 4, only the standard alphabet,
// at most two '=' and only at the end, zero pad bits, no whitespace. "" decodes to "".
std::optional<std::string> base64_decode(std::string_view text);

// Same rules, decoding into `out` without reallocating after the first size-up, so a caller
// holding a secret can wipe `out` and know no other copy exists. On failure `out` is wiped
// and left empty (a rejected line may still have been mostly a secret).
bool base64_decode_into(std::string_view text, std::string& out);

// Same rules, for bytes that are (or may be) a secret.
std::optional<Secret> base64_decode_secret(std::string_view text);

}  // namespace mailtap::smtp
