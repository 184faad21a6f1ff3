// The web view's text of a recorded message as UTF-8 (tools/web/charset.hpp): header fields with
// RFC 2047 encoded words, and bodies in the charset their Content-Type names; both are what any
// sender put in a mail. Beyond not crashing: whatever the bytes and the charset, what the page
// gets is valid UTF-8 (the JSON it travels in needs it), and a UTF-8 text cut anywhere stays
// valid once its partial character is dropped.
//
// Input: byte 0 picks a charset name (or takes one from the text, up to the first NUL); the
// rest is the text.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "proxy/common/text.hpp"
#include "tools/web/charset.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  static const char* const kCharsets[] = {
      "",       "utf-8",     "us-ascii", "iso-8859-1", "windows-1252", "iso-2022-jp",
      "utf-16", "shift_jis", "gb18030",  "koi8-r",     "UTF-7",        "big5"};
  constexpr std::size_t kNamed = sizeof kCharsets / sizeof kCharsets[0];
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string_view charset;
  if (data[0] < kNamed) {
    charset = kCharsets[data[0]];
  } else {
    const std::size_t nul = text.find('\0');
    charset = text.substr(0, nul);
    text.remove_prefix(nul == std::string_view::npos ? text.size() : nul + 1);
  }

  using namespace mailtap::tools::web;
  if (!mailtap::is_valid_utf8(decode_encoded_words(text))) std::abort();
  if (const auto converted = convert_to_utf8(text, charset)) {
    if (!mailtap::is_valid_utf8(*converted)) std::abort();
  }
  (void)to_utf8(text, charset);  // the text as it is where it cannot be converted
  const std::string words_only = decode_encoded_words_only(text);  // octets around kept as sent
  if (mailtap::is_valid_utf8(text)) {
    if (words_only != decode_encoded_words(text)) std::abort();  // the same for a UTF-8 field
    std::string cut(text.substr(0, text.size() / 2));
    drop_partial_character(cut, "utf-8");
    if (!mailtap::is_valid_utf8(cut)) std::abort();
  }
  return 0;
}
