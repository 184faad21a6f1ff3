#include "proxy/smtp/base64.hpp"

#include <openssl/mem.h>

#include <cstdint>

namespace mailtap::smtp {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int sextet(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

void wipe(std::string& s) {
  if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = static_cast<std::uint8_t>(bytes[i]) << 16 |
                            static_cast<std::uint8_t>(bytes[i + 1]) << 8 |
                            static_cast<std::uint8_t>(bytes[i + 2]);
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += kAlphabet[v >> 6 & 63];
    out += kAlphabet[v & 63];
  }
  const std::size_t left = bytes.size() - i;
  if (left > 0) {
    std::uint32_t v = static_cast<std::uint8_t>(bytes[i]) << 16;
    if (left == 2) v |= static_cast<std::uint8_t>(bytes[i + 1]) << 8;
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += left == 2 ? kAlphabet[v >> 6 & 63] : '=';
    out += '=';
  }
  return out;
}

bool base64_decode_into(std::string_view text, std::string& out) {
  wipe(out);
  if (text.size() % 4 != 0) return false;
  std::size_t pad = 0;
  if (!text.empty() && text.back() == '=') pad = text[text.size() - 2] == '=' ? 2 : 1;
  if (text.empty()) return true;
  // Sized once up front: growing would leave decoded bytes behind in a freed buffer.
  out.resize(text.size() / 4 * 3 - pad);
  std::size_t o = 0;
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    const std::size_t data_chars = last ? 4 - pad : 4;
    int v[4] = {0, 0, 0, 0};
    for (std::size_t j = 0; j < 4; ++j) {
      const char c = text[i + j];
      if (j >= data_chars) continue;  // the trailing '=' counted in pad
      v[j] = sextet(c);
      if (v[j] < 0) {
        wipe(out);
        return false;
      }
    }
    // Non-zero pad bits mean a non-canonical encoding; RFC 4648 §3.5 lets decoders reject it,
    // and rejecting keeps decode(encode(x)) == x a bijection the redactor can rely on.
    if ((data_chars == 3 && (v[2] & 0x3) != 0) || (data_chars == 2 && (v[1] & 0xf) != 0)) {
      wipe(out);
      return false;
    }
    const std::uint32_t triple =
        static_cast<std::uint32_t>(v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3]);
    out[o++] = static_cast<char>(triple >> 16 & 0xff);
    if (data_chars > 2) out[o++] = static_cast<char>(triple >> 8 & 0xff);
    if (data_chars > 3) out[o++] = static_cast<char>(triple & 0xff);
  }
  return true;
}

std::optional<std::string> base64_decode(std::string_view text) {
  std::optional<std::string> out(std::in_place);
  if (!base64_decode_into(text, *out)) out.reset();
  return out;
}

}  // namespace mailtap::smtp
