// export's mboxrd writer (tools/mboxrd.hpp), over any body, cut into pieces anywhere: the pieces
// give what the whole body gives; a reader undoing the quoting (one '>' off each line matching
// ^>+From ) gets the body back, with LF line ends (CRLF and a last line's CR dropped, the last
// line ended); and no line of the text begins "From ", which would start a message in a reader.
//
// Input: octet 0 is a seed for the piece sizes; the rest is the body.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tools/mboxrd.hpp"

namespace {

// The reader's side of mboxrd, written apart from the quoter.
std::string unquote(std::string_view text) {
  std::string out;
  while (!text.empty()) {
    const std::size_t lf = text.find('\n');
    if (lf == std::string_view::npos) std::abort();  // every line ended
    std::string_view line = text.substr(0, lf + 1);
    text.remove_prefix(lf + 1);
    const std::size_t quotes = line.find_first_not_of('>');
    if (quotes > 0 && quotes != std::string_view::npos && line.substr(quotes).starts_with("From "))
      line.remove_prefix(1);
    out.append(line);
  }
  return out;
}

// The body as the quoter promises to end its lines.
std::string lf_lines(std::string_view body) {
  std::string out;
  while (!body.empty()) {
    const std::size_t lf = body.find('\n');
    std::string_view line = body.substr(0, lf);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    out.append(line);
    out += '\n';
    if (lf == std::string_view::npos) break;
    body.remove_prefix(lf + 1);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  unsigned seed = data[0];
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::string whole = mailtap::tools::mboxrd_quote(body);

  std::string pieces;
  mailtap::tools::MboxrdQuoter quoter([&pieces](std::string_view p) { pieces.append(p); });
  for (std::size_t at = 0; at < body.size();) {
    const std::size_t n = seed % 7;  // empty pieces too
    seed = seed * 33 + 7;
    quoter.append(body.substr(at, n));
    at += n;
  }
  quoter.finish();
  if (pieces != whole) std::abort();

  if (!whole.empty() && whole.back() != '\n') std::abort();
  if (whole.starts_with("From ") || whole.find("\nFrom ") != std::string::npos) std::abort();
  if (unquote(whole) != lf_lines(body)) std::abort();
  return 0;
}
