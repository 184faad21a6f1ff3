// Just enough MIME (RFC 2045/2046) for the web page's message view: the header fields, and the
// leaf parts of the body with their transfer encoding undone. Lenient: a malformed message
// still shows as one text part, never an error (the raw source is always there beside it).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mailtap::tools::web {

struct MimeHeader {
  std::string name;   // as written
  std::string value;  // unfolded, not RFC 2047-decoded
};

struct MimePart {
  std::string content_type = "text/plain";  // lower case "type/subtype"
  std::string charset;                      // lower case; "" if none was given
  std::string filename;                     // from Content-Disposition or Content-Type name=
  bool attachment = false;                  // Content-Disposition: attachment
  std::string body;  // base64 / quoted-printable decoded, in `charset` (charset.hpp: to_utf8)
};

struct ParsedMessage {
  std::vector<MimeHeader> headers;
  std::vector<MimePart> parts;  // the leaves, in order; multipart containers are walked
};

ParsedMessage parse_message(std::string_view raw);

// Base64 as mail writes it (RFC 2045): line ends and other characters outside the alphabet are
// skipped, decoding stops at the first '=', and missing padding is tolerated.
std::string decode_base64(std::string_view in);

}  // namespace mailtap::tools::web
