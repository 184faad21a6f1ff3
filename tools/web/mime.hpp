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
  // From Content-Disposition's filename= or Content-Type's name= (mime_parameters.hpp): as
  // written, RFC 2047 encoded words not yet decoded; or, from RFC 2231's forms, UTF-8 text.
  std::string filename;
  bool filename_is_text = false;  // the RFC 2231 case: no encoded words to decode in it
  bool attachment = false;        // Content-Disposition: attachment
  std::string body;  // base64 / quoted-printable decoded, in `charset` (charset.hpp: to_utf8)
  // The body as written, in the text given to parse_message (valid while that is), and its
  // Content-Transfer-Encoding (lower case; "" if none): what TransferDecoder undoes.
  std::string_view encoded;
  std::string transfer_encoding;
};

struct ParsedMessage {
  std::vector<MimeHeader> headers;
  std::vector<MimePart> parts;  // the leaves, in order; multipart containers are walked
};

// The pieces parse_message is made of, shared with the streaming reader (mime_stream.hpp) so
// that both read a message the same way.
constexpr int kMimeMaxDepth = 8;  // nested multiparts beyond this are shown as they are
// A header section's fields: lines split at LF (a CR before it dropped), folded lines joined,
// lines without a ':' skipped.
std::vector<MimeHeader> parse_headers(std::string_view head);
// What an entity's header fields say of it: its type ("text/plain" when none or malformed),
// charset, filename, disposition and transfer encoding (body and encoded left empty); and in
// `boundary` the boundary of a multipart that names one, else "".
MimePart describe_entity(const std::vector<MimeHeader>& headers, std::string& boundary);

// The message in `raw` read whole. The server reads a stored message with the streaming reader
// (mime_stream.hpp), which is held to this (its unit tests and fuzz_mime_stream).
// With MimeBodies::located, each part's `body` is left empty: a caller that needs one part, or
// their sizes, decodes from `encoded` (TransferDecoder) without a decoded copy of every part.
enum class MimeBodies { decoded, located };
ParsedMessage parse_message(std::string_view raw, MimeBodies bodies = MimeBodies::decoded);

// Undoes a Content-Transfer-Encoding (base64, quoted-printable; anything else is passed as it
// is) over input given in pieces, cut anywhere: the same octets as decoding it whole.
class TransferDecoder {
 public:
  explicit TransferDecoder(std::string_view transfer_encoding);
  // Appends what `in` decodes to, as far as it can be decoded yet, to `out`.
  void append(std::string_view in, std::string& out);
  // The input ended: what was held back (the start of a quoted-printable escape) goes out.
  void finish(std::string& out);

 private:
  enum class Kind { identity, base64, quoted_printable } kind_;
  unsigned bits_buffer_ = 0;  // base64: bits not yet making an octet
  int bits_ = 0;
  bool stopped_ = false;  // base64: decoding stops at the first '='
  std::string held_;      // quoted-printable: an '=' and fewer than the two octets after it
};

// The length `encoded` decodes to, decoded a slice at a time (no copy of it held).
std::size_t decoded_size(std::string_view transfer_encoding, std::string_view encoded);

// The first `limit` octets `encoded` decodes to, decoded a slice at a time and no further than
// that: the message view's text of a part of any size. `cut` says whether it decodes to more.
std::string decoded_prefix(std::string_view transfer_encoding, std::string_view encoded,
                           std::size_t limit, bool& cut);

// Base64 as mail writes it (RFC 2045): line ends and other characters outside the alphabet are
// skipped, decoding stops at the first '=', and missing padding is tolerated.
std::string decode_base64(std::string_view in);

}  // namespace mailtap::tools::web
