// The credential scan of a stream stored in pieces: a message body is recorded as several events
// (up to one read each, 256 KiB), so a password or a base64 blob can begin in one and end in the
// next, where a scan of each piece alone sees neither half; and whether a line of base64 is a
// token or a slice of a wrapped encoding depends on the line before it, which may be in the
// previous piece. This scans each piece with a bounded tail of the previous ones, without
// holding the whole body.
#pragma once

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tools/credential_scan.hpp"

namespace mailtap::tools {

struct StreamFinding {
  std::uint64_t piece = 0;  // the caller's name of the piece it begins in (an event's seq)
  std::size_t offset = 0;   // where in that piece
  std::string what;         // as scan_for_credentials says it
};

class StreamCredentialScan {
 public:
  // Keeps a reference to `options` (and so to the --password-env password, which is not
  // copied): they must outlive the scan.
  explicit StreamCredentialScan(const CredentialScanOptions& options);
  StreamCredentialScan(CredentialScanOptions&&) = delete;

  // The next piece of the stream. Returns what is found in it, and what begins in an earlier
  // piece and reaches into this one; each once, however many pieces it touches. A run of base64
  // that reaches the end of the piece is judged with the piece that ends it (or by finish()).
  // A kind scan_for_credentials reports at its first place only is reported once a stream, as
  // a scan of the whole stream reports it: where the pieces end changes no count.
  std::vector<StreamFinding> add(std::uint64_t piece, std::string_view bytes);
  // The stream ended: returns what its last run of base64 held, then starts over as reset().
  std::vector<StreamFinding> finish();
  // The next piece begins another stream; what the last one's end held is not looked at.
  void reset();

  // The tail kept is the partial line the stream ends with (base64 tokens and bearer tokens do
  // not cross a line end), from its start, and never more than this; at least enough for the
  // password.
  static constexpr std::size_t kMostCarried = std::size_t{64} * 1024;

 private:
  struct Part {
    std::uint64_t piece = 0;
    std::uint64_t start = 0;  // stream offset of the piece's first octet
  };
  // Where the tail kept of `window` (the carried octets and the piece just added) begins.
  std::size_t carry_from(std::string_view window) const;
  // Keeps `window` from `from` on for the next piece.
  void carry(std::string_view window, std::size_t from);
  // What of `found` (in the carried octets and what follows them) lies before offset `before`
  // and was not reported yet, named by the piece it begins in.
  std::vector<StreamFinding> report(std::vector<CredentialFinding> found, std::size_t before);

  const CredentialScanOptions& options_;
  std::size_t least_carried_ = 0;
  std::string window_;               // the carried octets and the piece being scanned
  std::string carried_;              // the stream's last octets
  std::uint64_t carried_start_ = 0;  // their stream offset
  // scan_for_credentials' wrapped_width_before for a scan starting at carried_start_.
  std::size_t width_before_carried_ = 0;
  std::uint64_t end_ = 0;    // stream offset past the last octet
  std::vector<Part> parts_;  // the pieces the carried octets come from, in order
  // Findings by stream offset already reported, not to repeat when the carried tail is scanned
  // again with the next piece.
  std::set<std::pair<std::uint64_t, std::string>> known_;
  // The first_only kinds reported in this stream: a later copy, in a later piece, is not.
  std::set<std::string> first_only_reported_;
};

}  // namespace mailtap::tools
