#include "tools/web/charset.hpp"

#include <iconv.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <memory>

#include "proxy/common/hex.hpp"
#include "proxy/common/text.hpp"
#include "proxy/smtp/credential_shape.hpp"
#include "tools/web/mime.hpp"

namespace mailtap::tools::web {

namespace {

constexpr std::size_t kMaxCharsetName = 40;
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
// Header octets that are not UTF-8 are in a charset nobody declared: mail programs read them
// as windows-1252 (ISO-8859-1's superset, read in its place below too).
constexpr std::string_view kUndeclaredHeaderCharset = "windows-1252";

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The name iconv_open gets. Only letters, digits and "-_.:" pass: a name from a mail must not
// reach iconv's "//TRANSLIT"-style suffixes or anything that looks like a path.
std::optional<std::string> iconv_name(std::string_view charset) {
  std::string name = lower(charset);
  if (name.empty() || name.size() > kMaxCharsetName ||
      name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-_.:") != std::string::npos)
    return std::nullopt;
  if (name == "iso-8859-1" || name == "iso8859-1" || name == "latin1" || name == "l1")
    return "windows-1252";
  return name;
}

struct IconvCloser {
  void operator()(void* cd) const noexcept { iconv_close(static_cast<iconv_t>(cd)); }
};

bool is_utf8_name(std::string_view name) {
  return name == "utf-8" || name == "utf8" || name == "us-ascii" || name == "ascii";
}

std::string decode_q(std::string_view in) {
  std::string out;
  append_hex_unescaped(in, '=', out, '_');
  return out;
}

// One encoded word at the start of `s` ("=?cs?B?text?="): its length and UTF-8 text.
std::optional<std::string> encoded_word(std::string_view s, std::size_t& length) {
  if (!s.starts_with("=?")) return std::nullopt;
  const auto q1 = s.find('?', 2);
  if (q1 == std::string_view::npos || q1 + 2 >= s.size() || s[q1 + 2] != '?') return std::nullopt;
  const auto end = s.find("?=", q1 + 3);
  if (end == std::string_view::npos) return std::nullopt;
  std::string_view charset = s.substr(2, q1 - 2);
  charset = charset.substr(0, charset.find('*'));  // RFC 2231 language: =?utf-8*en?Q?...?=
  const char encoding = static_cast<char>(std::toupper(static_cast<unsigned char>(s[q1 + 1])));
  const std::string_view text = s.substr(q1 + 3, end - q1 - 3);
  if (text.find_first_of(" \t\r\n") != std::string_view::npos) return std::nullopt;
  std::optional<std::string> bytes;
  // B: only the alphabet (decode_base64 would skip anything else; a malformed word stays).
  if (encoding == 'B' && std::all_of(text.begin(), text.end(), smtp::is_base64_char))
    bytes = decode_base64(text);
  else if (encoding == 'Q')
    bytes = decode_q(text);
  if (!bytes) return std::nullopt;
  auto utf8 = convert_to_utf8(*bytes, charset);
  if (utf8) length = end + 2;
  return utf8;
}

// `text` with each octet that is no part of a well-formed UTF-8 character (RFC 3629) as U+FFFD:
// glibc's UTF-8 reader takes the 5- and 6-octet forms and code points past U+10FFFF, and its
// writer puts them out as they came.
std::string well_formed_utf8(std::string text) {
  if (is_valid_utf8(text)) return text;
  std::string out;
  out.reserve(text.size() * 3);
  for (std::string_view rest = text; !rest.empty();) {
    const std::size_t n = utf8_char_length(rest);
    if (n == 0) {
      out += kReplacement;
      rest.remove_prefix(1);
    } else {
      out.append(rest.substr(0, n));
      rest.remove_prefix(n);
    }
  }
  return out;
}

}  // namespace

std::optional<std::string> convert_to_utf8(std::string_view text, std::string_view charset) {
  const std::optional<std::string> name = iconv_name(charset);
  if (!name) return std::nullopt;
  const iconv_t opened = iconv_open("UTF-8", name->c_str());
  if (opened == reinterpret_cast<iconv_t>(-1)) return std::nullopt;
  const std::unique_ptr<void, IconvCloser> cd(opened);

  std::string out;
  out.reserve(text.size() + text.size() / 2);
  std::array<char, 4096> buffer;
  char* in = const_cast<char*>(text.data());  // iconv's signature; the input is not written
  std::size_t in_left = text.size();
  while (true) {
    char* o = buffer.data();
    std::size_t o_left = buffer.size();
    const std::size_t done = in_left == 0 ? iconv(opened, nullptr, nullptr, &o, &o_left)
                                          : iconv(opened, &in, &in_left, &o, &o_left);
    out.append(buffer.data(), static_cast<std::size_t>(o - buffer.data()));
    if (done != static_cast<std::size_t>(-1)) {
      if (in_left == 0 && o == buffer.data()) break;  // converted and flushed
      continue;
    }
    if (errno == E2BIG) continue;
    if (in_left == 0) break;  // the shift state could not be flushed
    // EILSEQ (not in the charset) or EINVAL (cut short at the end): skip one byte.
    out += kReplacement;
    ++in;
    --in_left;
  }
  return well_formed_utf8(std::move(out));
}

std::string to_utf8(std::string_view text, std::string_view charset) {
  if (charset.empty() || is_utf8_name(lower(charset))) return std::string(text);
  return convert_to_utf8(text, charset).value_or(std::string(text));
}

void drop_partial_character(std::string& octets, std::string_view charset) {
  if (!charset.empty() && !is_utf8_name(lower(charset))) return;
  // The last character's lead octet: at most three continuation octets (10xxxxxx) back.
  std::size_t lead = octets.size();
  while (lead > 0 && octets.size() - lead < 4 &&
         (static_cast<unsigned char>(octets[lead - 1]) & 0xc0) == 0x80)
    --lead;
  if (lead == 0) return;
  --lead;
  const auto octet = static_cast<unsigned char>(octets[lead]);
  const std::size_t length = octet >= 0xf0 ? 4 : octet >= 0xe0 ? 3 : octet >= 0xc0 ? 2 : 1;
  if (octets.size() - lead < length) octets.resize(lead);
}

std::string decode_encoded_words(std::string_view value) {
  // Encoded words are ASCII, which windows-1252 leaves as it is: reading the whole value in it
  // first reads the octets around the words and leaves the words to decode.
  std::optional<std::string> read;
  if (!is_valid_utf8(value)) read = convert_to_utf8(value, kUndeclaredHeaderCharset);
  return decode_encoded_words_only(read ? *read : value);
}

std::string decode_encoded_words_only(std::string_view value) {
  std::string out;
  std::size_t pending_space = 0;  // white space after an encoded word, dropped before the next
  bool after_word = false;
  std::size_t i = 0;
  while (i < value.size()) {
    std::size_t length = 0;
    if (value[i] == '=' && value.substr(i).starts_with("=?")) {
      if (auto decoded = encoded_word(value.substr(i), length)) {
        if (!after_word) out.append(value.substr(i - pending_space, pending_space));
        out += *decoded;
        i += length;
        after_word = true;
        pending_space = 0;
        continue;
      }
    }
    if (value[i] == ' ' || value[i] == '\t') {
      ++pending_space;
      ++i;
      continue;
    }
    out.append(value.substr(i - pending_space, pending_space));
    out += value[i];
    pending_space = 0;
    after_word = false;
    ++i;
  }
  out.append(value.substr(value.size() - pending_space));
  return out;
}

}  // namespace mailtap::tools::web
