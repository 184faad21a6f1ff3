// Feeds arbitrary upstream bytes to ReplyParser in reads of arbitrary sizes. Checks that the
// replies are the same whatever the read boundaries, that they are exactly the leading bytes
// of the stream, that each is well formed, and that an error is final.
//
// Input: byte 0 seeds the read sizes; the rest is the upstream's byte stream.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "proxy/smtp/reply_parser.hpp"

namespace {

using mailtap::smtp::Reply;
using mailtap::smtp::ReplyParser;

struct Output {
  std::string replies;  // concatenated raw bytes
  std::size_t count = 0;
  ReplyParser::Error error = ReplyParser::Error::none;
};

void check(const Reply& r) {
  if (r.code < 100 || r.code > 599) std::abort();
  if (r.lines.empty() || r.raw.empty() || r.raw.back() != '\n') std::abort();
  if (r.raw.size() > ReplyParser::max_reply + ReplyParser::max_line + 2) std::abort();
  if (!r.enhanced_status.empty() && r.enhanced_status[0] != '2' && r.enhanced_status[0] != '4' &&
      r.enhanced_status[0] != '5')
    std::abort();
}

Output parse(std::string_view input, std::uint8_t seed, bool split) {
  ReplyParser p;
  Output out;
  std::uint32_t state = seed;
  std::size_t pos = 0;
  while (pos < input.size()) {
    std::size_t take = input.size() - pos;
    if (split) {
      state = state * 1103515245u + 12345u;
      take = std::min<std::size_t>(take, 1 + ((state >> 16) & 63));
    }
    p.feed(input.substr(pos, take));
    pos += take;
    while (auto r = p.next()) {
      check(*r);
      out.replies += r->raw;
      ++out.count;
    }
    if (p.error() != ReplyParser::Error::none) {
      if (p.next()) std::abort();  // sticky
      if (p.error_text().empty()) std::abort();
    }
  }
  out.error = p.error();
  if (out.error == ReplyParser::Error::none && p.buffered() + out.replies.size() != input.size())
    std::abort();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  const Output whole = parse(input, data[0], false);
  const Output pieces = parse(input, data[0], true);
  if (input.substr(0, whole.replies.size()) != whole.replies) std::abort();
  // Errors can be detected earlier with partial reads (a line too long before its LF), never
  // later: the replies delivered before the error match, and so does the verdict.
  if (whole.error == ReplyParser::Error::none &&
      (pieces.error != ReplyParser::Error::none || whole.replies != pieces.replies))
    std::abort();
  if (whole.error == ReplyParser::Error::malformed && whole.replies != pieces.replies &&
      pieces.error == ReplyParser::Error::malformed)
    std::abort();
  return 0;
}
