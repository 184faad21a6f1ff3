// `mailtap decode` over lines a person copied from anywhere (tools/auth_line_decoder.hpp): AUTH
// lines, 334 prompts, SASL responses, replies, bare base64. Beyond not crashing: what it prints
// goes to a terminal, so each output line is UTF-8 with no control character but tab (an ESC in
// a decoded prompt would drive the user's terminal), no C1 control and no line break. What is a
// secret is the redactor's to say, and fuzz_auth_redactor checks it.
//
// Input: byte 0's low bit is --show-secret; the rest is lines, as decode reads them.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "printable_check.hpp"
#include "tools/auth_line_decoder.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  mailtap::tools::AuthLineDecoder decoder((data[0] & 1) != 0);
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    if (const auto out = decoder.line(text.substr(0, nl))) {
      mailtap::fuzz::check_terminal_text(*out, false);
    }
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
  }
  return 0;
}
