// The byte scans behind `mailtap audit`: anything shaped like a credential (which redaction
// should have kept out of the record) and end-of-data sequences a lenient and a strict server
// would read differently (SMTP smuggling). Pure functions over bytes; they never return the
// secret itself, only where it is and what it looked like.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/smtp/secret.hpp"

namespace mailtap::tools {

struct CredentialFinding {
  std::size_t offset = 0;  // where in the scanned bytes
  std::string what;        // "base64 SASL PLAIN blob (user \"alice\")"; never the secret
  // A kind found at its first place only (the password in clear or base64-encoded, a bearer
  // token in clear): a scan reports it once, however many copies follow.
  bool first_only = false;
};

// A password the user knows was used (--password-env): found in clear, base64-encoded, or inside
// any base64 token that decodes to bytes containing it. Held as the proxy holds one, in Secrets
// (wiped when they go), its encoding made once beside it: no copy per scan left in freed memory.
class CredentialScanOptions {
 public:
  CredentialScanOptions() = default;
  explicit CredentialScanOptions(smtp::Secret known_password);

  std::string_view known_password() const { return known_password_.view(); }
  std::string_view known_password_base64() const { return known_password_base64_.view(); }

 private:
  smtp::Secret known_password_;
  smtp::Secret known_password_base64_;
};

// `bytes` begin a line. A line of base64 that continues a wrapped encoding (the line before it
// is base64 without padding, a whole number of quanta, at least as long) is a slice of some
// larger encoded thing (a MIME attachment, 57 octets a line), not a token anyone sent: it is not
// taken for a PLAIN blob, however its octets fall. `wrapped_width_before` is, for the first
// line, the length of the line before `bytes` when that line is such base64, else 0.
// `message_body`: the bytes are a message body, where a PLAIN blob must be RFC 4616 text
// (UTF-8, no control characters), since an attachment's base64 decodes to any octets and some
// of its lines have the byte shape. Elsewhere (commands, AUTH lines, notes) the byte shape the
// dialogue redacts by is the test, so a password in Latin-1 the redaction missed is found.
std::vector<CredentialFinding> scan_for_credentials(std::string_view bytes,
                                                    const CredentialScanOptions& options,
                                                    std::size_t wrapped_width_before = 0,
                                                    bool message_body = false);

// smtp::base64_decode_secret's rules (canonical base64 only) and result, decoded into `out`
// (wiped first; false, with `out` empty, if the decoding does not fit in its capacity), at the
// speed of a table: audit decodes every line of every attachment in the record. Not constant
// time in the data as BoringSSL's decoder is: what audit decodes is a file it reads anyway,
// where timing gives nothing away; the decoding still goes into a Secret, wiped as the next one
// takes its place.
bool decode_base64_for_scan(std::string_view text, smtp::Secret& out);

// What scan_for_credentials' `wrapped_width_before` would be for a scan starting at
// `line_start` (0, or just after a line end) of `bytes`: for 0, `width_before` itself.
std::size_t wrapped_width_before(std::string_view bytes, std::size_t line_start,
                                 std::size_t width_before);

// True if `line` (one client line, no CRLF) is a base64 token that decodes to printable text,
// i.e. what a client sends after a "334 VXNlcm5hbWU6" / "334 UGFzc3dvcmQ6" prompt.
bool looks_like_base64_text(std::string_view line);

struct SmugglingShape {
  std::size_t offset = 0;  // offset of the '.'
  std::string shape;       // escaped, e.g. "\\n.\\n" or "\\r\\n.\\n"
};
// Every "." alone on a "line" where either line end around it is not exactly CRLF: the
// sequences (\n.\n, \r.\r, \n.\r\n, \r\n.\n, ...) that some server may take as end of data.
std::vector<SmugglingShape> find_smuggling_shapes(std::string_view data);

// find_smuggling_shapes over a stream handed over in pieces (a session's DATA and BDAT events),
// holding only its last 4 octets: each '.' is judged once, as soon as the octets around it are
// there, so the shapes (offsets in the stream) are those find_smuggling_shapes finds in the
// pieces joined, without anyone holding them joined.
class SmugglingShapeStream {
 public:
  // The next piece: appends the shapes it completes to `out`.
  void add(std::string_view bytes, std::vector<SmugglingShape>& out);
  // The stream ended: appends the shape at its next-to-last octet, if any; the next piece
  // begins a new stream.
  void finish(std::vector<SmugglingShape>& out);

 private:
  // Appends the shapes around each '.' of `d` (whose first octet is at `start` of the stream)
  // at stream offsets [from, to].
  static void judge(std::string_view d, std::uint64_t start, std::uint64_t from, std::uint64_t to,
                    std::vector<SmugglingShape>& out);

  std::string tail_;       // the stream's last (up to 4) octets
  std::uint64_t end_ = 0;  // octets so far
};

}  // namespace mailtap::tools
