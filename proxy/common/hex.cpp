#include "proxy/common/hex.hpp"

namespace mailtap {

std::string to_hex(const unsigned char* bytes, std::size_t size) {
  std::string out;
  out.reserve(2 * size);
  for (std::size_t i = 0; i < size; ++i) append_hex(out, bytes[i]);
  return out;
}

std::string to_hex(std::string_view bytes) {
  return to_hex(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
}

std::string to_hex_colons(const unsigned char* bytes, std::size_t size) {
  static constexpr char upper[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(size == 0 ? 0 : 3 * size - 1);
  for (std::size_t i = 0; i < size; ++i) {
    if (i > 0) out.push_back(':');
    out.push_back(upper[bytes[i] >> 4]);
    out.push_back(upper[bytes[i] & 15]);
  }
  return out;
}

void append_hex_escape(std::string& out, unsigned char byte) {
  out += "\\x";
  append_hex(out, byte);
}

int hex_digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int hex_pair_value(std::string_view s) {
  if (s.size() < 2) return -1;
  const int high = hex_digit_value(s[0]);
  const int low = hex_digit_value(s[1]);
  return high < 0 || low < 0 ? -1 : high * 16 + low;
}

void append_hex_unescaped(std::string_view in, char escape, std::string& out, char as_space) {
  for (std::size_t i = 0; i < in.size(); ++i) {
    const int octet = in[i] == escape ? hex_pair_value(in.substr(i + 1)) : -1;
    if (octet >= 0) {
      out += static_cast<char>(octet);
      i += 2;
    } else {
      out += in[i] == as_space && as_space != '\0' ? ' ' : in[i];
    }
  }
}

}  // namespace mailtap
