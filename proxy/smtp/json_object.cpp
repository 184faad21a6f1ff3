#include "proxy/smtp/json_object.hpp"

#include <cstdint>

#include "proxy/common/text.hpp"

namespace mailtap::smtp {
namespace {

constexpr int kMaxDepth = 32;

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

class Reader {
 public:
  explicit Reader(std::string_view text) : s_(text) {}

  void skip_space() {
    while (pos_ < s_.size() && is_space(s_[pos_])) ++pos_;
  }
  bool at(char c) const { return pos_ < s_.size() && s_[pos_] == c; }
  bool eat(char c) {
    skip_space();
    if (!at(c)) return false;
    ++pos_;
    return true;
  }

  // At an opening quote: the raw contents up to the closing quote.
  std::optional<std::string_view> string() {
    if (!at('"')) return std::nullopt;
    const std::size_t start = ++pos_;
    while (pos_ < s_.size()) {
      const char c = s_[pos_];
      if (c == '"') return s_.substr(start, pos_++ - start);
      if (c == '\\') {
        if (pos_ + 1 >= s_.size()) return std::nullopt;
        pos_ += 2;
        continue;
      }
      if (static_cast<unsigned char>(c) < 0x20) return std::nullopt;
      ++pos_;
    }
    return std::nullopt;
  }

  // A bare word: a number or true/false/null, checked only for its characters.
  std::optional<std::string_view> word(JsonMember::Type& type) {
    const std::size_t start = pos_;
    while (pos_ < s_.size()) {
      const char c = s_[pos_];
      const bool word_char = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                             (c >= 'A' && c <= 'Z') || c == '-' || c == '+' || c == '.';
      if (!word_char) break;
      ++pos_;
    }
    const std::string_view w = s_.substr(start, pos_ - start);
    if (w.empty()) return std::nullopt;
    if (w == "true" || w == "false" || w == "null") {
      type = JsonMember::Type::literal;
      return w;
    }
    for (char c : w) {
      if (!((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'))
        return std::nullopt;
    }
    type = JsonMember::Type::number;
    return w;
  }

  // At '{' or '[': skips to the matching close without recursion; the whole text.
  std::optional<std::string_view> nested() {
    const std::size_t start = pos_;
    int depth = 0;
    while (pos_ < s_.size()) {
      const char c = s_[pos_];
      if (c == '"') {
        if (!string()) return std::nullopt;
        continue;
      }
      if (c == '{' || c == '[') {
        if (++depth > kMaxDepth) return std::nullopt;
      } else if (c == '}' || c == ']') {
        if (--depth == 0) {
          ++pos_;
          return s_.substr(start, pos_ - start);
        }
      }
      ++pos_;
    }
    return std::nullopt;
  }

  std::optional<std::string_view> value(JsonMember::Type& type) {
    skip_space();
    if (at('"')) {
      type = JsonMember::Type::string;
      return string();
    }
    if (at('{') || at('[')) {
      type = at('{') ? JsonMember::Type::object : JsonMember::Type::array;
      return nested();
    }
    return word(type);
  }

 private:
  std::string_view s_;
  std::size_t pos_ = 0;
};

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::uint32_t> hex4(std::string_view raw, std::size_t at) {
  if (at + 4 > raw.size()) return std::nullopt;
  std::uint32_t v = 0;
  for (std::size_t i = at; i < at + 4; ++i) {
    const int h = hex_value(raw[i]);
    if (h < 0) return std::nullopt;
    v = v << 4 | static_cast<std::uint32_t>(h);
  }
  return v;
}

// Every escape is at least as long as what it decodes to, so `put` never needs more room
// than raw.size() in total.
template <typename Put>
bool unescape(std::string_view raw, Put&& put) {
  for (std::size_t i = 0; i < raw.size(); ++i) {
    const char c = raw[i];
    if (c != '\\') {
      put(c);
      continue;
    }
    if (++i >= raw.size()) return false;
    switch (raw[i]) {
      case '"':
      case '\\':
      case '/':
        put(raw[i]);
        break;
      case 'b':
        put('\b');
        break;
      case 'f':
        put('\f');
        break;
      case 'n':
        put('\n');
        break;
      case 'r':
        put('\r');
        break;
      case 't':
        put('\t');
        break;
      case 'u': {
        std::optional<std::uint32_t> cp = hex4(raw, i + 1);
        if (!cp) return false;
        i += 4;
        if (*cp >= 0xd800 && *cp < 0xdc00 && i + 2 < raw.size() && raw[i + 1] == '\\' &&
            raw[i + 2] == 'u') {
          const std::optional<std::uint32_t> low = hex4(raw, i + 3);
          if (low && *low >= 0xdc00 && *low < 0xe000) {
            cp = 0x10000 + ((*cp - 0xd800) << 10) + (*low - 0xdc00);
            i += 6;
          }
        }
        if (*cp >= 0xd800 && *cp < 0xe000) cp = 0xfffd;  // a lone surrogate
        put_utf8(*cp, put);
        break;
      }
      default:
        return false;
    }
  }
  return true;
}

}  // namespace

std::optional<std::vector<JsonMember>> parse_json_object(std::string_view text,
                                                         std::size_t max_members) {
  Reader r(text);
  if (!r.eat('{')) return std::nullopt;
  std::vector<JsonMember> members;
  for (;;) {
    if (r.eat('}')) return members;
    r.skip_space();
    JsonMember m;
    const std::optional<std::string_view> key = r.string();
    if (!key || !r.eat(':')) return std::nullopt;
    const std::optional<std::string_view> value = r.value(m.type);
    if (!value || members.size() >= max_members) return std::nullopt;
    m.key = *key;
    m.value = *value;
    members.push_back(m);
    if (r.eat(',')) continue;  // a trailing comma before '}' is tolerated by the loop
    if (!r.eat('}')) return std::nullopt;
    return members;  // whatever follows the object (a newline, junk) is not its business
  }
}

const JsonMember* find_member(const std::vector<JsonMember>& members, std::string_view key) {
  for (const JsonMember& m : members) {
    if (m.key == key) return &m;
  }
  return nullptr;
}

bool json_unescape(std::string_view raw, std::string& out) {
  out.clear();
  out.reserve(raw.size());
  return unescape(raw, [&out](char c) { out += c; });
}

bool json_unescape_into(std::string_view raw, Secret& out) {
  out.clear();
  if (out.room() < raw.size()) return false;
  if (unescape(raw, [&out](char c) { out.push_back(c); })) return true;
  out.clear();
  return false;
}

}  // namespace mailtap::smtp
