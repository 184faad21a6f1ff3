// The web view's streaming MIME reader (tools/web/mime_stream.hpp) against parse_message over
// the whole text: the same header fields, and the same leaves at the same offsets decoded to the
// same octets, wherever the text is cut into pieces (the leaves up to the reader's kMaxParts).
//
// Input: byte 0 sets the piece length (1 to 256) and the text limit (1 to 256); the rest is the
// message.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "tools/web/mime.hpp"
#include "tools/web/mime_stream.hpp"

namespace web = mailtap::tools::web;

namespace {

bool every_part(const web::MimePart&) {
  return true;
}

template <typename Reader>
void in_pieces(Reader& reader, std::string_view raw, std::size_t piece) {
  for (std::size_t at = 0; at < raw.size(); at += piece) reader.append(raw.substr(at, piece));
}

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t piece = 1 + data[0];
  const std::size_t text_limit = 1 + (data[0] * 7 % 256);
  const std::string_view raw(reinterpret_cast<const char*>(data + 1), size - 1);

  const web::ParsedMessage whole = web::parse_message(raw, web::MimeBodies::located);
  web::MimeStructureReader structure;
  in_pieces(structure, raw, piece);
  web::LocatedMessage streamed = structure.finish();
  web::LocatedPartsDecoder decoder(streamed, every_part, text_limit, SIZE_MAX);
  in_pieces(decoder, raw, piece);
  decoder.finish();

  check(streamed.headers.size() == whole.headers.size());
  for (std::size_t i = 0; i < whole.headers.size(); ++i) {
    check(streamed.headers[i].name == whole.headers[i].name);
    check(streamed.headers[i].value == whole.headers[i].value);
  }
  // The streaming reader keeps the first kMaxParts leaves and counts the rest.
  const std::size_t kept = std::min(whole.parts.size(), web::MimeStructureReader::kMaxParts);
  check(streamed.parts.size() == kept);
  check(streamed.parts_left_out == whole.parts.size() - kept);
  for (std::size_t i = 0; i < kept; ++i) {
    const web::MimePart& w = whole.parts[i];
    const web::LocatedPart& s = streamed.parts[i];
    check(s.part.content_type == w.content_type && s.part.charset == w.charset &&
          s.part.filename == w.filename && s.part.attachment == w.attachment &&
          s.part.transfer_encoding == w.transfer_encoding);
    check(s.offset == static_cast<std::uint64_t>(w.encoded.data() - raw.data()));
    check(s.length == w.encoded.size());
    check(s.decoded_size == web::decoded_size(w.transfer_encoding, w.encoded));
    bool cut = false;
    check(s.text == web::decoded_prefix(w.transfer_encoding, w.encoded, text_limit, cut));
    check(s.text_cut == cut);
  }
  return 0;
}
