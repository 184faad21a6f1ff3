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
// For text that is not a secret (prompts, error JSON): secrets go through base64_decode_secret.
std::optional<std::string> base64_decode(std::string_view text);

// Same rules, for bytes that are (or may be) a secret.
std::optional<Secret> base64_decode_secret(std::string_view text);

}  // namespace mailtap::smtp
