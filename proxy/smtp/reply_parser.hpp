// Frames the upstream's byte stream into complete SMTP replies (RFC 5321 §4.2), multi-line
// replies included. Lines may end in CRLF or, leniently, bare LF; the raw bytes are kept exactly
// so the client receives what the server said.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mailtap::smtp {

struct Reply {
  int code = 0;                    // basic code, 100..599
  std::string raw;                 // exact bytes of every line, line endings included
  std::vector<std::string> lines;  // text after "NNN-"/"NNN ", line ending removed
  std::string enhanced_status;     // RFC 3463 "x.y.z" from the first line, empty if absent

  bool positive_completion() const { return code / 100 == 2; }
  bool intermediate() const { return code / 100 == 3; }
  // The server closes after it: a 221, whatever it answers (to QUIT, or Postfix's "221 2.7.0
  // Error: I can break rules, too. Goodbye." to a forbidden command), or a 421 (RFC 5321 §3.8).
  bool closes_session() const { return code == 221 || code == 421; }
  // First line's text, for human messages ("Must issue a STARTTLS command first").
  std::string text() const;
};

// A recorded reply as one line for a person (the LAST REPLY of `mailtap sessions`, a message's
// final reply in `mailtap show`): the code once, then every line's text, each without its
// leading blanks, joined by "; " ("250 22 byte chunk, total 22; OK id=1xaP4y-0007PF-29" for
// Exim's "250- 22 byte chunk, total 22" / "250 OK id=1xaP4y-0007PF-29"); an enhanced status the
// first line gives is not repeated from the later lines. What has no "NNN-" start is only cut at
// the line end.
std::string reply_summary(std::string_view raw);

// "5.7.0 Must issue..." -> "5.7.0"; empty if the text does not start with an enhanced status.
std::string parse_enhanced_status(std::string_view text);

class ReplyParser {
 public:
  // Limits protect mailtap's memory from a hostile or broken server; they are far beyond what
  // RFC 5321 allows (512 octets a reply line) and what real servers send.
  static constexpr std::size_t max_line = 8192;
  static constexpr std::size_t max_reply = std::size_t{256} * 1024;

  enum class Error { none, line_too_long, reply_too_long, malformed };

  void feed(std::string_view bytes) { buffer_.append(bytes); }
  // The next complete reply, if one is buffered. After an error, always nullopt.
  std::optional<Reply> next();
  Error error() const { return error_; }
  std::string_view error_text() const;
  // After Error::malformed: the reply's lines up to and including the one that made it so, as
  // received (whatever came after them in the same read is not part of it).
  std::string_view malformed_octets() const {
    return std::string_view(buffer_).substr(consumed_, malformed_end_ - consumed_);
  }
  // After Error::malformed: what was wrong with its last line, in words ("reply code 650 is
  // outside 100..599 (RFC 5321 §4.2)").
  std::string malformed_reason() const;
  // Bytes received but not yet part of a complete reply (used to detect STARTTLS injection).
  std::size_t buffered() const { return buffer_.size() - consumed_; }
  // ... and those bytes hold a whole line (of a multi-line reply not yet complete).
  bool line_buffered() const { return buffer_.find('\n', consumed_) != std::string::npos; }
  // Those bytes, for another parser to read on from (the relay's, once the set-up has read the
  // greeting); this one is left empty.
  std::string take_buffered() {
    std::string rest = buffer_.substr(consumed_);
    buffer_.clear();
    consumed_ = 0;
    return rest;
  }

 private:
  std::optional<std::string_view> take_line(std::size_t& pos);
  Reply complete(Reply reply, std::size_t pos);

  std::string buffer_;
  std::size_t consumed_ = 0;  // bytes of buffer_ already returned in replies
  Error error_ = Error::none;
  std::size_t malformed_end_ = 0;  // of buffer_: just past the line that made the reply malformed
};

}  // namespace mailtap::smtp
