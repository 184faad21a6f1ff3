// The reply explanations: `mailtap explain`'s reading of what a person pastes (parse_reply_query
// and both renderings), and the lines --transcript --explain prints under each reply a server
// sends (explanation_lines, advise_reply over the server's own text). Beyond not crashing:
// what reaches a terminal is UTF-8 with no control character but tab and line feed, whatever was
// pasted or sent (an ESC would let a server drive the user's terminal), and an accepted query is a
// real reply code and/or a valid enhanced status of one class.
//
// Input: byte 0 picks the reply code for the transcript's lines (its top two bits the class, 2
// to 5, its low six the rest: 0xE3 is 535); the rest is the pasted text, and the server's reply
// text.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <string>
#include <string_view>

#include "printable_check.hpp"
#include "proxy/smtp/reply_parser.hpp"
#include "tools/reply_codes.hpp"
#include "tools/reply_explanation.hpp"

namespace {

void check_terminal_text(std::string_view s) {
  mailtap::fuzz::check_terminal_text(s, true);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);

  std::string error;
  if (const auto q = mailtap::tools::parse_reply_query(text, error)) {
    if (q->code == 0 && q->enhanced.empty()) std::abort();
    if (q->code != 0 && mailtap::tools::basic_code_meaning(q->code).empty()) std::abort();
    if (!q->enhanced.empty() && !mailtap::tools::enhanced_status_meaning(q->enhanced).valid)
      std::abort();
    check_terminal_text(mailtap::tools::render_explanation_text(*q));
    const std::string json = mailtap::tools::render_explanation_json(*q);
    if (json.size() < 3 || json.front() != '{' || json.substr(json.size() - 2) != "}\n")
      std::abort();
    check_terminal_text(json);
  } else {
    if (error.empty()) std::abort();
    check_terminal_text(error);
  }

  const int code = (2 + (data[0] >> 6)) * 100 + (data[0] & 63);
  const std::string enhanced = mailtap::smtp::parse_enhanced_status(text);
  // The command the reply answers changes the meaning read (RCPT's 2.1.0 is no sender's).
  constexpr std::string_view verbs[] = {"", "MAIL", "RCPT", "DATA", "EHLO", "AUTH"};
  const std::string_view verb = verbs[text.size() % std::size(verbs)];
  for (const std::string& line : mailtap::tools::explanation_lines(code, enhanced, text, verb))
    check_terminal_text(line);
  return 0;
}
