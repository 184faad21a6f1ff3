// The parameters of a MIME header field (tools/web/mime_parameters.hpp): Content-Type's and
// Content-Disposition's, as any sender writes them. Beyond not crashing: any octets written as a
// quoted-string (each '"' and '\' after a backslash) read back as themselves, any UTF-8 text
// written in RFC 2231's form, whole or cut into sections anywhere, reads back as itself, marked
// as text, and nothing that is not UTF-8 is marked as text.
//
// Input: byte 0 says where the RFC 2231 form is cut into two sections; the rest is read as a
// field's value, and is the text written in both forms.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "proxy/common/text.hpp"
#include "tools/web/mime_parameters.hpp"

namespace web = mailtap::tools::web;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

std::string quoted(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + '"';
}

std::string percent_encoded(std::string_view octets) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : octets) {
    const auto octet = static_cast<unsigned char>(c);
    out += '%';
    out += kHex[octet >> 4];
    out += kHex[octet & 15];
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);

  (void)web::mime_parameter(text, "filename");
  // Marked as text only when it is: the page shows a value that is not UTF-8 as octets, and
  // decodes it, only when it is not marked (a value marked and not UTF-8 got neither).
  const web::MimeParameterText read = web::mime_text_parameter(text, "filename");
  check(!read.extended || mailtap::is_valid_utf8(read.value));

  check(web::mime_parameter("attachment; filename=" + quoted(text) + "; size=1", "filename") ==
        text);
  if (text.empty() || !mailtap::is_valid_utf8(text)) return 0;
  const std::string encoded = percent_encoded(text);
  const auto whole =
      web::mime_text_parameter("attachment; filename*=UTF-8''" + encoded, "filename");
  check(whole.extended && whole.value == text);
  const std::size_t cut = 3 * (data[0] % (text.size() + 1));
  const std::string sections = "attachment; filename*1*=" + encoded.substr(cut) +
                               "; filename*0*=utf-8'en'" + encoded.substr(0, cut);
  const auto joined = web::mime_text_parameter(sections, "filename");
  check(joined.extended && joined.value == text);
  return 0;
}
