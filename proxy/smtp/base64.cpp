#include "proxy/smtp/base64.hpp"

#include <openssl/base64.h>
#include <openssl/mem.h>

#include <cstdint>

namespace mailtap::smtp {
namespace {

const std::uint8_t* bytes_of(std::string_view s) {
  return reinterpret_cast<const std::uint8_t*>(s.data());
}

// Decodes `text` into `out` (room for text.size() / 4 * 3 bytes, as EVP_DecodeBase64 demands)
// and returns the decoded length, or nullopt. BoringSSL checks the length, the alphabet and
// where '=' may stand; what it lets through is a final group whose unused pad bits are not
// zero ("Zh==" for "f"), which would give one value two encodings.
std::optional<std::size_t> decode_to(std::string_view text, char* out) {
  if (text.empty()) return 0;
  std::size_t max_out = 0;
  std::size_t n = 0;
  if (!EVP_DecodedLength(&max_out, text.size()) ||
      !EVP_DecodeBase64(reinterpret_cast<std::uint8_t*>(out), &n, max_out, bytes_of(text),
                        text.size())) {
    return std::nullopt;
  }
  if (const std::size_t partial = n % 3; partial != 0) {
    std::uint8_t canonical[5];
    EVP_EncodeBlock(canonical, reinterpret_cast<const std::uint8_t*>(out + n - partial), partial);
    const bool same = CRYPTO_memcmp(canonical, text.data() + text.size() - 4, 4) == 0;
    OPENSSL_cleanse(canonical, sizeof canonical);
    if (!same) return std::nullopt;
  }
  return n;
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out(base64_encoded_size(bytes.size()) + 1, '\0');  // EVP_EncodeBlock adds a NUL
  out.resize(
      EVP_EncodeBlock(reinterpret_cast<std::uint8_t*>(out.data()), bytes_of(bytes), bytes.size()));
  return out;
}

bool base64_encode_append(std::string_view bytes, Secret& out) {
  if (base64_encoded_size(bytes.size()) > out.room()) return false;
  // Whole groups through a small buffer: out has no room for EVP_EncodeBlock's NUL.
  constexpr std::size_t chunk = 48;
  std::uint8_t buf[chunk / 3 * 4 + 1];
  for (std::size_t i = 0; i < bytes.size(); i += chunk) {
    const std::string_view part = bytes.substr(i, chunk);
    const std::size_t n = EVP_EncodeBlock(buf, bytes_of(part), part.size());
    out.append(std::string_view(reinterpret_cast<const char*>(buf), n));
  }
  OPENSSL_cleanse(buf, sizeof buf);
  return true;
}

std::optional<std::string> base64_decode(std::string_view text) {
  // Decoded in a Secret (wiped when it goes): a rejected line may still have been mostly a
  // secret. The copy handed out is for text that is not one (prompts, JSON errors).
  const std::optional<Secret> decoded = base64_decode_secret(text);
  if (!decoded) return std::nullopt;
  return std::string(decoded->view());
}

std::optional<Secret> base64_decode_secret(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  Secret out(text.size() / 4 * 3);
  char* at = out.extend(out.capacity());
  const std::optional<std::size_t> n = decode_to(text, at);
  if (!n) return std::nullopt;  // out's destructor wipes whatever was decoded
  out.truncate(*n);
  return out;
}

}  // namespace mailtap::smtp
